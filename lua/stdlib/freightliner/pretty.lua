--- freightliner.pretty: Lua values as readable text, for the REPL.
--
--   pretty.format(value [, opts]) -> string
--     opts: indent ("  "), width (80: a table that fits stays on one
--     line), max_depth (6), max_string (200 bytes, longer strings are cut
--     and their length shown), max_items (200 per table).
--
-- Tables print with their array part first, then the other keys sorted
-- (numbers, then strings, then the rest); a table that contains itself
-- prints <cycle> where it recurs; values with a __tostring metamethod
-- print as tostring() does; JSON/YAML null prints as null.

local NULL = require("freightliner.core").yaml.null

local M = {}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function quote(s, max)
  local cut = #s > max
  local body = cut and s:sub(1, max) or s
  body = body:gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    if c == "\r" then return "\\r" end
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\%03d", c:byte())
  end)
  if cut then return string.format('"%s"... (%d bytes)', body, #s) end
  return '"' .. body .. '"'
end

local function scalar(v, o)
  local t = type(v)
  if t == "string" then return quote(v, o.max_string) end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    return string.format("%.14g", v)
  end
  if v == NULL then return "null" end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__tostring then
    local ok, s = pcall(tostring, v)
    if ok then return s end
  end
  return tostring(v)
end

local function key_text(k, o)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
  return "[" .. scalar(k, o) .. "]"
end

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    local rank = { number = 1, string = 2 }
    local ra, rb = rank[ta] or 3, rank[tb] or 3
    if ra ~= rb then return ra < rb end
    return ta < tb
  end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function render(v, o, depth, path)
  if type(v) ~= "table" then return scalar(v, o) end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__tostring then return scalar(v, o) end
  if path[v] then return "<cycle>" end
  if next(v) == nil then return "{}" end
  if depth >= o.max_depth then return "{...}" end
  path[v] = true
  local items = {}
  local n = #v
  for i = 1, n do
    if #items >= o.max_items then break end
    items[#items + 1] = render(v[i], o, depth + 1, path)
  end
  local keys = {}
  for k in next, v do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  local total = n + #keys
  for _, k in ipairs(keys) do
    if #items >= o.max_items then break end
    items[#items + 1] = key_text(k, o) .. " = " .. render(v[k], o, depth + 1, path)
  end
  if total > #items then items[#items + 1] = string.format("... (%d more)", total - #items) end
  path[v] = nil
  local one = "{ " .. table.concat(items, ", ") .. " }"
  if #one + #o.indent * depth <= o.width and not one:find("\n", 1, true) then return one end
  -- several lines: short array items share lines, everything else has its own
  local pad = string.rep(o.indent, depth + 1)
  local lines, cur = {}, nil
  for i, item in ipairs(items) do
    local packable = i <= n and not item:find("\n", 1, true)
    if packable and cur and #cur + 2 + #item + #pad <= o.width then
      cur = cur .. ", " .. item
    else
      if cur then lines[#lines + 1] = cur end
      cur = item
      if not packable then
        lines[#lines + 1] = cur
        cur = nil
      end
    end
  end
  if cur then lines[#lines + 1] = cur end
  return "{\n" .. pad .. table.concat(lines, ",\n" .. pad) .. "\n" .. string.rep(o.indent, depth) .. "}"
end

function M.format(v, opts)
  opts = opts or {}
  local o = {
    indent = opts.indent or "  ", width = opts.width or 80, max_depth = opts.max_depth or 6,
    max_string = opts.max_string or 200, max_items = opts.max_items or 200,
  }
  return render(v, o, 0, {})
end

return M
