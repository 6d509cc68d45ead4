--- freightliner.cli: the command line, dispatched to freightliner.cmd.*.
--
-- The C `main` only boots Lua and calls `main(args)` here, with args[0] the
-- program name. Each command is a module `freightliner.cmd.NAME` that
-- returns `{ summary = "...", usage = "...", run = function(argv) ... end }`
-- and `run` returns the process exit status:
--   0 all done; 1 some work failed; 2 usage or configuration error;
--   130 / 143 interrupted by SIGINT / SIGTERM.

local M = {}

M.EXIT = { OK = 0, FAILED = 1, USAGE = 2, SIGINT = 130, SIGTERM = 143 }

-- Order in which `--help` lists the commands.
M.commands = { "replicate", "replicate-tree", "sync", "serve",
               "resume", "validate-config", "inspect", "list-tags", "catalog",
               "run", "repl", "version", "help" }

local function stderr(fmt, ...)
  io.stderr:write("freightliner: ", string.format(fmt, ...), "\n")
end
M.stderr = stderr

local function load_command(name)
  if not name:match("^[%w-]+$") then return nil end
  local ok, cmd = pcall(require, "freightliner.cmd." .. name:gsub("-", "_"))
  if ok then return cmd end
  if not tostring(cmd):find("module 'freightliner.cmd.", 1, true) then
    error(cmd, 0) -- a real error inside the command module
  end
  return nil
end
M.load_command = load_command

function M.usage()
  local lines = {
    "freightliner - copy container images between registries and OCI layouts",
    "",
    "usage: freightliner [--lua-dir DIR] [--log-level L] [--log-format F] COMMAND [OPTIONS] [ARGS]",
    "       freightliner -e 'LUA CODE'",
    "",
    "commands:",
  }
  for _, name in ipairs(M.commands) do
    local cmd = load_command(name)
    lines[#lines + 1] = string.format("  %-18s %s", name, cmd and cmd.summary or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "global options: --version, --help, -e CODE, --lua-dir DIR,"
  lines[#lines + 1] = "  --log-level debug|info|warn|error|off, --log-format text|json"
  lines[#lines + 1] = "Run 'freightliner help COMMAND' for a command's options."
  return table.concat(lines, "\n") .. "\n"
end

-- Global options before the command: --log-level, --log-format (also
-- --name=value). Removes them from argv; returns true or nil, message.
local function global_options(argv)
  local log = require("freightliner.log")
  local setters = { ["log-level"] = log.set_level, ["log-format"] = log.set_format }
  while argv[1] do
    local name, value = argv[1]:match("^%-%-([%w-]+)=(.*)$")
    if not name then name = argv[1]:match("^%-%-([%w-]+)$") end
    local set = name and setters[name]
    if not set then return true end
    local n = 1
    if not value then
      value = argv[2]
      n = 2
      if value == nil then return nil, string.format("option '--%s' needs a value", name) end
    end
    local ok, err = set(value)
    if not ok then return nil, err end
    for _ = 1, n do table.remove(argv, 1) end
  end
  return true
end

--- Entry point called by the C host. Returns the exit status.
function M.main(args)
  local argv = {}
  for i = 1, #args do argv[i] = args[i] end
  local gok, gerr = global_options(argv)
  if not gok then
    stderr("%s; run 'freightliner --help' for usage", gerr)
    return M.EXIT.USAGE
  end
  local first = argv[1]
  if first == nil or first == "--help" or first == "-h" then
    io.stdout:write(M.usage())
    return first and M.EXIT.OK or M.EXIT.USAGE
  end
  if first == "--version" or first == "-V" then
    first = "version"
  elseif first == "-e" then
    first = "eval"
    table.remove(argv, 1)
    table.insert(argv, 1, "eval")
  end
  local cmd = load_command(first)
  if not cmd then
    stderr("unknown command '%s'; run 'freightliner --help' for the list", first)
    return M.EXIT.USAGE
  end
  table.remove(argv, 1)
  if argv[1] == "--help" or argv[1] == "-h" then
    io.stdout:write(cmd.usage or cmd.summary, "\n")
    return M.EXIT.OK
  end
  local status = cmd.run(argv, args[0])
  return math.tointeger(status) or M.EXIT.OK
end

return M
