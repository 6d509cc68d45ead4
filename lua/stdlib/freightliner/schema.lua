--- freightliner.schema: check a loaded YAML document against a schema and
-- report every problem at its line and column.
--
--   local S = require("freightliner.schema")
--   local spec = S.map({ host = S.string{ required = true },
--                        insecure = S.boolean() })
--   local value, problems = S.validate(doc, spec, positions, opts)
--
-- Constructors: S.map(fields [, {check =}]), S.dict(value_spec),
-- S.list(item_spec [, {scalar_ok = true}]) (scalar_ok: a lone item is a
-- list of one), S.string{check =}, S.integer{min =}, S.number{above =},
-- S.boolean(), S.size{min =} (bytes: a whole number or "8MiB", "512k", ...;
-- at least 1 unless min = 0).
-- Every spec takes required = true. check(value) -> nil | message [,
-- offset]: with a 0-based offset into a string the problem is reported at
-- that character (opts.lines, the source lines, tell a quote to skip).
--
-- validate returns the value with nulls dropped and interpolated strings
-- coerced where a number or boolean is expected (opts.interpolated, from
-- freightliner.interpolate), and problems { {line=, column=, message=} }.
-- Messages start with the path of the value ("sync[1].tags.latest: ...").
-- Unknown keys are reported at the key with the allowed ones and the
-- closest match; keys in opts.ignore_keys are left to the caller, and so
-- are values marked in opts.skip[t][k] (already reported elsewhere).

local M = {}

local NULL = require("freightliner.core").yaml.null

function M.map(fields, o)
  o = o or {}
  return { kind = "map", fields = fields, check = o.check, required = o.required }
end
function M.dict(value, o)
  o = o or {}
  return { kind = "dict", value = value, required = o.required }
end
function M.list(item, o)
  o = o or {}
  return { kind = "list", item = item, scalar_ok = o.scalar_ok, required = o.required, check = o.check }
end
local function scalar(kind)
  return function(o)
    o = o or {}
    return { kind = kind, check = o.check, required = o.required, min = o.min, above = o.above }
  end
end
M.string = scalar("string")
M.integer = scalar("integer")
M.number = scalar("number")
M.boolean = scalar("boolean")
M.size = scalar("size")

--- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end
M.distance = distance

--- The closest of candidates to word, if close enough to be a likely typo.
function M.closest(word, candidates)
  local best, bd
  for _, c in ipairs(candidates) do
    local d = distance(word, c)
    if not bd or d < bd or (d == bd and c < best) then best, bd = c, d end
  end
  if best and bd <= math.max(2, #word // 3) and bd < #word then return best end
  return nil
end

--- Raise on a key of the table `opts` not in the set `known`, naming the
-- closest valid one and listing them all: the one check of option keys
-- for the Lua API (fl.registry, fl.configure, fl.copy, replicate.*).
-- level: as for error(), from the caller's point of view.
function M.check_keys(what, opts, known, level)
  if opts == nil then return end
  if type(opts) ~= "table" then error(string.format("%s: options must be a table", what), level + 1) end
  for k in pairs(opts) do
    if known[k] == nil then
      local names = {}
      for name in pairs(known) do names[#names + 1] = name end
      table.sort(names)
      local hint = M.closest(tostring(k), names)
      error(string.format("%s: unknown option '%s'%s (valid: %s)", what, tostring(k),
        hint and ("; did you mean '" .. hint .. "'?") or "", table.concat(names, ", ")), level + 1)
    end
  end
end

local function describe(v)
  if v == NULL then return "nothing (null)" end
  local t = type(v)
  if t == "table" then return (#v > 0 or next(v) == nil) and "a list" or "a mapping" end
  if t == "string" then return string.format("a string ('%s')", #v > 40 and v:sub(1, 37) .. "..." or v) end
  if t == "boolean" then return tostring(v) end
  if math.type(v) == "integer" then return string.format("the number %d", v) end
  if t == "number" then return string.format("the number %s", tostring(v)) end
  return "a " .. t
end
M.describe = describe

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

local UNITS = { [""] = 1, b = 1, k = 1000, kb = 1000, kib = 1024, m = 1000 ^ 2, mb = 1000 ^ 2,
                mib = 1024 ^ 2, g = 1000 ^ 3, gb = 1000 ^ 3, gib = 1024 ^ 3 }

--- Bytes from a whole number or a string like "8MiB"; nil if neither.
function M.parse_size(v)
  if math.type(v) == "integer" then return v end
  if type(v) ~= "string" then return nil end
  local num, unit = v:lower():match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
  if not num or not UNITS[unit] then return nil end
  return math.tointeger(math.floor(tonumber(num) * UNITS[unit]))
end

local function coerce(v, kind)
  if kind == "boolean" then
    if v == "true" then return true elseif v == "false" then return false end
  elseif kind == "integer" then
    return math.tointeger(tonumber(v))
  elseif kind == "number" then
    return tonumber(v)
  end
  return nil
end

-- The validator: one call per document.
local function validator(positions, opts)
  local problems = {}
  local interpolated = opts.interpolated or {}
  local ignore = opts.ignore_keys or {}
  local skip = opts.skip or {}

  local function pos_value(parent, key)
    local p = parent and positions[parent]
    if p then return p.values[key] or p end
    return {}
  end
  local function pos_key(parent, key)
    local p = parent and positions[parent]
    if p then return p.keys[key] or p end
    return {}
  end
  local function add(p, fmt, ...)
    problems[#problems + 1] = { line = p.line, column = p.column, message = string.format(fmt, ...) }
  end

  local check

  local function scalar_value(spec, v, path, p, parent, key)
    local kind = spec.kind
    if type(v) == "string" and kind ~= "string" and kind ~= "size"
      and interpolated[parent] and interpolated[parent][key] then
      local c = coerce(v, kind)
      if c ~= nil then v = c end
    end
    if kind == "string" then
      if type(v) ~= "string" then
        return add(p, "%s: expected a string, got %s", path, describe(v))
      end
    elseif kind == "boolean" then
      if type(v) ~= "boolean" then
        return add(p, "%s: expected true or false, got %s", path, describe(v))
      end
    elseif kind == "integer" then
      if math.type(v) ~= "integer" then
        return add(p, "%s: expected a whole number%s, got %s", path,
          spec.min and (" >= " .. spec.min) or "", describe(v))
      end
      if spec.min and v < spec.min then
        return add(p, "%s: must be >= %d, got %d", path, spec.min, v)
      end
    elseif kind == "number" then
      if type(v) ~= "number" or v ~= v then
        return add(p, "%s: expected a number, got %s", path, describe(v))
      end
      if spec.above and v <= spec.above then
        return add(p, "%s: must be greater than %s, got %s", path, tostring(spec.above), tostring(v))
      end
    elseif kind == "size" then
      local n = M.parse_size(v)
      if not n or n < (spec.min or 1) then
        return add(p, "%s: expected a size in bytes (a whole number, or like '8MiB'), got %s", path, describe(v))
      end
      v = n
    end
    if spec.check then
      local err, offset = spec.check(v)
      if err then
        -- a check may point at a character of the string (0-based offset):
        -- the column moves there, past an opening quote
        if offset and p.line then
          local line = opts.lines and opts.lines[p.line] or ""
          local q = line:sub(p.column, p.column)
          p = { line = p.line, column = p.column + offset + ((q == "'" or q == '"') and 1 or 0) }
        end
        return add(p, "%s: %s", path, err)
      end
    end
    return v
  end

  local function map_value(spec, v, path, p)
    if type(v) ~= "table" or (is_list(v) and next(v) ~= nil) then
      return add(p, "%s: expected a mapping, got %s", path, describe(v))
    end
    local out = {}
    local allowed = {}
    for name in pairs(spec.fields) do allowed[#allowed + 1] = name end
    table.sort(allowed)
    local unknown = {}
    for k in pairs(v) do
      if not spec.fields[k] and not ignore[k] then unknown[#unknown + 1] = k end
    end
    table.sort(unknown, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(unknown) do
      local hint = type(k) == "string" and M.closest(k, allowed)
      add(pos_key(v, k), "unknown key '%s'%s%s (allowed: %s)", tostring(k),
        path ~= "" and (" in " .. path) or "",
        hint and ("; did you mean '" .. hint .. "'?") or "", table.concat(allowed, ", "))
    end
    for _, name in ipairs(allowed) do
      local fspec = spec.fields[name]
      local fv = v[name]
      local fpath = path == "" and name or (path .. "." .. name)
      if fv == nil or fv == NULL then
        if fspec.required then
          add(fv == nil and p or pos_key(v, name), "%s: '%s' is required", path == "" and "(top level)" or path, name)
        end
      else
        out[name] = check(fspec, fv, fpath, pos_value(v, name), v, name)
      end
    end
    if spec.check then
      local err, where = spec.check(out, v)
      if err then
        local at = where and pos_key(v, where) or p
        add(at, "%s: %s", path == "" and "(top level)" or path, err)
      end
    end
    return out
  end

  local function dict_value(spec, v, path, p)
    if type(v) ~= "table" or (is_list(v) and next(v) ~= nil) then
      return add(p, "%s: expected a mapping of names, got %s", path, describe(v))
    end
    local out = {}
    local names = {}
    for k in pairs(v) do names[#names + 1] = k end
    table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(names) do
      if type(k) ~= "string" then
        add(pos_key(v, k), "%s: names must be strings, got %s", path, describe(k))
      elseif v[k] == NULL then
        add(pos_value(v, k), "%s.%s: expected a mapping, got nothing (null)", path, k)
      else
        out[k] = check(spec.value, v[k], path .. "." .. k, pos_value(v, k), v, k)
      end
    end
    return out
  end

  local function list_value(spec, v, path, p, parent, key)
    if type(v) ~= "table" then
      if spec.scalar_ok then
        local one = check(spec.item, v, path, p, parent, key)
        return one ~= nil and { one } or nil
      end
      return add(p, "%s: expected a list, got %s", path, describe(v))
    end
    if not is_list(v) then
      return add(p, "%s: expected a list, got a mapping", path)
    end
    local out = {}
    for i, item in ipairs(v) do
      local r = check(spec.item, item, string.format("%s[%d]", path, i), pos_value(v, i), v, i)
      if r ~= nil then out[#out + 1] = r end
    end
    if spec.check then
      local err = spec.check(out)
      if err then add(p, "%s: %s", path, err) end
    end
    return out
  end

  function check(spec, v, path, p, parent, key)
    if parent and skip[parent] and skip[parent][key] then return nil end
    if spec.kind == "map" then return map_value(spec, v, path, p) end
    if spec.kind == "dict" then return dict_value(spec, v, path, p) end
    if spec.kind == "list" then return list_value(spec, v, path, p, parent, key) end
    return scalar_value(spec, v, path, p, parent, key)
  end

  return check, problems
end

--- Validate doc against spec; see the module comment.
function M.validate(doc, spec, positions, opts)
  opts = opts or {}
  local check, problems = validator(positions or {}, opts)
  local p = (positions and positions[doc]) or { line = 1, column = 1 }
  local value = check(spec, doc, "", p, nil, nil)
  return value, problems
end

--- Sort problems by position, then message.
function M.sort(problems)
  table.sort(problems, function(a, b)
    local la, lb = a.line or 0, b.line or 0
    if la ~= lb then return la < lb end
    local ca, cb = a.column or 0, b.column or 0
    if ca ~= cb then return ca < cb end
    return a.message < b.message
  end)
  return problems
end

return M
