--- freightliner -e CODE [ARGS...]: run a string of Lua with the API loaded.
local exitcode = require("freightliner.exitcode")
local script = require("freightliner.script")

return {
  summary = "run a string of Lua code (also: freightliner -e CODE)",
  usage = [[usage: freightliner -e 'LUA CODE' [ARGS...]

Runs the code with the global `fl` = require("freightliner") and `arg` set
as for a script. Example: freightliner -e 'print(fl.digest.sha256("abc"))']],
  run = function(argv, program)
    if not argv[1] then
      io.stderr:write("freightliner: -e needs a string of Lua code\n")
      return exitcode.USAGE
    end
    local rest = table.move(argv, 2, #argv, 1, {})
    return script.run_string(argv[1], rest, program)
  end,
}
