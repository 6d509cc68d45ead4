--- freightliner help [COMMAND]: the command list, or one command's usage.
local exitcode = require("freightliner.exitcode")
return {
  summary = "show the command list, or the usage of one command",
  usage = "usage: freightliner help [COMMAND]",
  run = function(argv)
    local cli = require("freightliner.cli")
    if not argv[1] then
      io.stdout:write(cli.usage())
      return exitcode.OK
    end
    local cmd = cli.load_command(argv[1])
    if not cmd then
      cli.stderr("unknown command '%s'; run 'freightliner --help' for the list", argv[1])
      return exitcode.USAGE
    end
    io.stdout:write(cmd.usage or cmd.summary, "\n")
    return exitcode.OK
  end,
}
