--- freightliner.args: a small command-line option parser for the CLI.
--
-- A spec lists options by long name: `{ name = "tag-filter", value = true,
-- multi = true }`. Parsing accepts `--name VALUE`, `--name=VALUE`, flags
-- (`--dry-run`), `--` to end options, and collects positional arguments.
-- `aliases = { "old-name" }` accepts other names for an option (stored under
-- its name). Errors are returned, not raised, as `nil, message` so the CLI
-- can print usage and exit 2; an unknown option names the closest valid one.

local M = {}

--- Parse `argv` (a list of strings) against `spec`. With
-- `how.stop_at_positional`, the first positional argument and everything
-- after it are positional (for `run SCRIPT [ARGS...]`).
-- @return opts (table keyed by option name, positional in opts[1..n]) or
--   nil, message
function M.parse(argv, spec, how)
  how = how or {}
  local byname = {}
  for _, o in ipairs(spec) do
    byname[o.name] = o
    if o.short then byname[o.short] = o end
    for _, a in ipairs(o.aliases or {}) do byname[a] = o end
  end
  local opts, positional = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" or (how.stop_at_positional and a:sub(1, 1) ~= "-") then
      for j = (a == "--") and i + 1 or i, #argv do
        positional[#positional + 1] = argv[j]
      end
      break
    end
    local name, inline = a:match("^%-%-([^=]+)=(.*)$")
    if not name then name = a:match("^%-%-(.+)$") or a:match("^%-(%a)$") end
    if name then
      local o = byname[name]
      if not o then
        return nil, M.unknown(a, spec)
      end
      local value = true
      if o.value then
        if inline then
          value = inline
        else
          i = i + 1
          value = argv[i]
          if value == nil then
            return nil, string.format("option '--%s' needs a value", o.name)
          end
        end
        if o.number then
          local n = math.tointeger(tonumber(value))
          if not n or n < (o.min or -math.huge) or n > (o.max or math.huge) then
            local range = o.min and o.max and string.format(" from %d to %d", o.min, o.max)
              or o.min and (" >= " .. o.min) or o.max and (" <= " .. o.max) or ""
            return nil, string.format("option '--%s' needs a whole number%s, got '%s'", o.name, range, value)
          end
          value = n
        end
      elseif inline then
        return nil, string.format("option '--%s' takes no value", o.name)
      end
      if o.multi then
        opts[o.name] = opts[o.name] or {}
        table.insert(opts[o.name], value)
      else
        opts[o.name] = value
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  for k, v in ipairs(positional) do opts[k] = v end
  return opts
end

--- "unknown option '--x' (did you mean '--y'?)" for option `a` and `spec`.
function M.unknown(a, spec)
  local names = {}
  for _, o in ipairs(spec) do names[#names + 1] = o.name end
  local name = a:match("^%-%-([^=]+)") or a:match("^%-(.)") or a
  local hint = require("freightliner.schema").closest(name, names)
  return string.format("unknown option '%s'%s", a, hint and string.format(" (did you mean '--%s'?)", hint) or "")
end

return M
