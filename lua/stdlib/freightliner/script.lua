--- freightliner.script: runs user Lua (scripts, -e code) the way lua5.4 does.
--
-- The chunk runs with the global `arg` set as lua5.4 sets it (arg[0] the
-- script, arg[1..n] its arguments, also passed as `...`) and the global
-- `fl` bound to require("freightliner"). An error prints `file:line:
-- message` and a traceback to stderr; the status is then 1. A chunk that
-- returns an integer uses it as the exit status.

local M = {}

local function traceback(msg)
  if type(msg) ~= "string" then
    local mt = getmetatable(msg)
    msg = (mt and mt.__tostring) and tostring(msg)
      or string.format("(error object is a %s value)", type(msg))
  end
  return debug.traceback(msg, 2)
end

--- Call a loaded chunk with args; returns the exit status.
function M.call(chunk, args)
  _G.fl = _G.fl or require("freightliner")
  local results = table.pack(xpcall(chunk, traceback, table.unpack(args, 1, args.n or #args)))
  if not results[1] then
    io.stderr:write(results[2], "\n")
    return 1
  end
  return math.tointeger(results[2]) or 0
end

--- Run a script file with its arguments; returns the exit status.
function M.run_file(path, args, program)
  local chunk, err = loadfile(path)
  if not chunk then
    io.stderr:write("freightliner: ", err, "\n")
    -- a script that cannot be opened is a usage error; one that does not
    -- compile is a script error
    return err:find("cannot open", 1, true) and 2 or 1
  end
  local a = { [-1] = program, [0] = path or "-", n = #args }
  for i = 1, #args do a[i] = args[i] end
  _G.arg = a
  return M.call(chunk, a)
end

--- Run a string of code (freightliner -e); returns the exit status.
function M.run_string(code, args, program)
  local chunk, err = load(code, "=(command line)")
  if not chunk then
    io.stderr:write("freightliner: ", err, "\n")
    return 1
  end
  local a = { [-1] = program, [0] = "-e", n = #args }
  for i = 1, #args do a[i] = args[i] end
  _G.arg = a
  return M.call(chunk, a)
end

return M
