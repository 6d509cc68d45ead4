--- helpers: shared by the busted specs. Runs the real binary and captures
-- its exit status, stdout and stderr.
local M = {}

M.bin = os.getenv("FREIGHTLINER_BIN") or "build/bin/freightliner"
M.root = os.getenv("PWD")

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function M.tmpname()
  local p = os.tmpname()
  return p
end

--- Run the binary with a list of arguments; returns status, stdout, stderr.
-- opts.stdin: string fed to stdin; opts.env: "VAR=value ..." prefix.
function M.run(args, opts)
  opts = opts or {}
  local parts = {}
  for i, a in ipairs(args) do parts[i] = M.shell_quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local input = "/dev/null"
  if opts.stdin then
    input = os.tmpname()
    local f = assert(io.open(input, "wb"))
    f:write(opts.stdin)
    f:close()
  end
  local cmd = string.format("%s %s %s <%s >%s 2>%s", opts.env or "",
    M.shell_quote(opts.bin or M.bin), table.concat(parts, " "), input, out, err)
  local _, _, status = os.execute(cmd)
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  if opts.stdin then os.remove(input) end
  return status, o, e
end

function M.write_file(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

return M
