--- freightliner run SCRIPT.lua [ARGS...]: run a Lua script with the API loaded.
local core = require("freightliner.core")
local exitcode = require("freightliner.exitcode")
local script = require("freightliner.script")

return {
  summary = "run a Lua script with the Freightliner API (global `fl`)",
  usage = [[usage: freightliner run SCRIPT.lua [ARGS...]

Runs SCRIPT.lua as lua5.4 would: `arg[0]` is the script, `arg[1..]` and `...`
its arguments. The global `fl` is require("freightliner"). An error prints
file:line: message and a traceback, and the exit status is 1; a script that
returns an integer exits with it. Use '-' to read the script from stdin.
SIGINT or SIGTERM cancels the script's copies (they return CANCELLED) and,
once the script has returned, the exit status is 130 or 143.]],
  run = function(argv, program)
    local path = argv[1]
    if not path then
      io.stderr:write("freightliner: run needs a script path; see 'freightliner help run'\n")
      return exitcode.USAGE
    end
    local rest = table.move(argv, 2, #argv, 1, {})
    local status = script.run_file(path ~= "-" and path or nil, rest, program)
    -- a signal that cancelled the script's copies ends the run as a signal
    -- does, whatever the script made of the CANCELLED it saw
    local sig = core.engine.signal()
    if sig then return 128 + sig end
    return status
  end,
}
