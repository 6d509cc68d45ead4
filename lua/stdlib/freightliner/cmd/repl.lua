--- freightliner repl: an interactive Lua prompt with the API loaded.
local exitcode = require("freightliner.exitcode")
local repl = require("freightliner.repl")

return {
  summary = "an interactive Lua prompt with the API loaded (global `fl`)",
  usage = [[usage: freightliner repl

An interactive Lua 5.4 prompt with `fl` = require("freightliner"). Type an
expression to see its value (tables are pretty-printed), or any statement;
an unfinished statement continues on the next line (>>). Tab completes
names (fl.<Tab>, reg:<Tab>). History is kept in ~/.freightliner_history
($FREIGHTLINER_HISTORY). Errors print with a traceback and leave you at the
prompt. .exit or Ctrl-D quits. With stdin not a terminal it reads
statements from stdin without prompts and stops at the first error
(exit status 1; 0 when every statement ran).]],
  run = function(argv)
    if argv[1] then
      io.stderr:write("freightliner: repl takes no arguments; see 'freightliner help repl'\n")
      return exitcode.USAGE
    end
    return repl.run()
  end,
}
