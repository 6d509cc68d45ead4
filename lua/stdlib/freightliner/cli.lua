--- freightliner.cli: the command line, dispatched to freightliner.cmd.*.
--
-- The C `main` only boots Lua and calls `main(args)` here, with args[0] the
-- program name. Each command is a module `freightliner.cmd.NAME` that
-- returns `{ summary = "...", usage = "...", run = function(argv) ... end }`
-- and `run` returns the process exit status from freightliner.exitcode:
--   0 all done; 1 some work failed; 2 usage or configuration error;
--   130 / 143 interrupted by SIGINT / SIGTERM.
-- `run` may also raise a user error (exitcode.raise/usage): its message is
-- printed without a traceback. Any other error is a bug: it is printed with
-- its traceback and a line asking to report it.

local exitcode = require("freightliner.exitcode")

local M = {}

M.EXIT = { OK = exitcode.OK, FAILED = exitcode.FAILED, USAGE = exitcode.USAGE, SIGINT = exitcode.SIGINT,
           SIGTERM = exitcode.SIGTERM }

-- Order in which `--help` lists the commands.
M.commands = { "replicate", "replicate-tree", "sync", "serve", "resume", "export", "import", "validate-config",
               "inspect", "list-tags", "catalog",
               "run", "repl", "version", "help" }

-- A message for the user: "freightliner: ..." with control characters
-- escaped, or one JSON log line under --log-format json.
local function stderr(fmt, ...)
  local msg = string.format(fmt, ...)
  local log = require("freightliner.log")
  if log.json() then
    log.log("error", msg)
  else
    io.stderr:write("freightliner: ", (msg:gsub("[^\n]+", require("freightliner.printable").escape)), "\n")
  end
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
    "usage: freightliner [--lua-dir DIR] [--log-level L] [--log-format F] [--no-progress] COMMAND [OPTIONS] [ARGS]",
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
  lines[#lines + 1] = "  --log-level debug|info|warn|error|off, --log-format text|json, --no-progress"
  lines[#lines + 1] = "  (before or after the command; --lua-dir before it)"
  lines[#lines + 1] = ""
  lines[#lines + 1] = exitcode.help()
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run 'freightliner help COMMAND' for a command's options."
  return table.concat(lines, "\n") .. "\n"
end

-- Global options, before or after the command: --log-level L, --log-format
-- F (also --name=value) and --no-progress. Removed from argv (for run and
-- -e only up to the script, whose own arguments are left alone); returns
-- { no_progress = bool } or nil, message.
local GLOBAL = { ["log-level"] = "set_level", ["log-format"] = "set_format", ["no-progress"] = false }

local function global_options(argv)
  local log = require("freightliner.log")
  local found = {}
  local i, seen_command = 1, false
  while argv[i] do
    local a = argv[i]
    if a == "--" then break end
    local name, value = a:match("^%-%-([%w-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w-]+)$") end
    if name == "lua-dir" and seen_command then
      return nil, "--lua-dir must come before the command (it decides where the commands are loaded from)"
    end
    local setter = name and GLOBAL[name]
    if setter == nil then
      if not a:match("^%-.") then -- a positional ("-" is stdin for run)
        if seen_command and (argv[1] == "run" or argv[1] == "-e" or argv[1] == "eval") then break end
        seen_command = true
      elseif a == "-e" and not seen_command then
        break -- -e CODE ARGS...: the rest belongs to the code
      end
      i = i + 1
    elseif setter == false then
      if value then return nil, string.format("option '--%s' takes no value", name) end
      found.no_progress = true
      table.remove(argv, i)
    else
      local n = 1
      if not value then
        value = argv[i + 1]
        n = 2
        if value == nil then return nil, string.format("option '--%s' needs a value", name) end
      end
      local ok, err = log[setter](value)
      if not ok then return nil, err end
      for _ = 1, n do table.remove(argv, i) end
    end
  end
  return found
end

-- The message handler of a command: user errors pass as they are; anything
-- else is a bug in Freightliner, kept with its traceback.
local function handler(e)
  if exitcode.is_user_error(e) then return e end
  return { bug = debug.traceback(tostring(e), 2) }
end

--- Run a command's `run` so that a user error prints its message and status
-- and a bug prints its traceback and asks to be reported. Returns the status.
function M.call(fn, ...)
  local ok, status = xpcall(fn, handler, ...)
  if ok then return math.tointeger(status) or exitcode.OK end
  if exitcode.is_user_error(status) then
    stderr("%s", status.message)
    return status.status
  end
  io.stderr:write("freightliner: internal error: ", status.bug, "\n")
  stderr("this is a bug in Freightliner, not in what you asked for; please report it with the "
    .. "command line and the lines above (freightliner version: %s)", M.version())
  return exitcode.FAILED
end

function M.version()
  local ok, v = pcall(function() return require("freightliner").versions().freightliner end)
  return ok and v or "unknown"
end

--- Entry point called by the C host. Returns the exit status.
function M.main(args)
  local argv = {}
  for i = 1, #args do argv[i] = args[i] end
  local globals, gerr = global_options(argv)
  if not globals then
    stderr("%s; run 'freightliner --help' for usage", gerr)
    return exitcode.USAGE
  end
  M.no_progress = globals.no_progress or false
  local first = argv[1]
  if first == nil or first == "--help" or first == "-h" then
    io.stdout:write(M.usage())
    return first and exitcode.OK or exitcode.USAGE
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
    if first:match("^%-") then
      stderr("%s; run 'freightliner --help' for usage", require("freightliner.args").unknown(first, {
        { name = "help" }, { name = "version" }, { name = "log-level" }, { name = "log-format" },
        { name = "no-progress" }, { name = "lua-dir" } }))
    else
      local hint = require("freightliner.schema").closest(first, M.commands)
      stderr("unknown command '%s'%s; run 'freightliner --help' for the list", first,
        hint and string.format(" (did you mean '%s'?)", hint) or "")
    end
    return exitcode.USAGE
  end
  table.remove(argv, 1)
  if argv[1] == "--help" or argv[1] == "-h" then
    io.stdout:write(cmd.usage or cmd.summary, "\n")
    return exitcode.OK
  end
  if M.no_progress and cmd.spec then
    for _, o in ipairs(cmd.spec) do
      if o.name == "no-progress" then table.insert(argv, 1, "--no-progress") break end
    end
  end
  require("freightliner.log").new_run_id()
  return M.call(cmd.run, argv, args[0])
end

return M
