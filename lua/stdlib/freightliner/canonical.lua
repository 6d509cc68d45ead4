--- freightliner.canonical: deterministic JSON, for checksums and for files
-- that people diff (checkpoints, metrics).
--
--   canonical.encode(value [, { indent = "  " }]) -> string | nil, message
--
-- Object keys are sorted (byte order); a table whose keys are exactly
-- 1..n (n > 0) is an array, any other table an object (so an empty table
-- is {}); strings are escaped by cjson; integers print as integers, and so
-- do floats with an integral value; other floats print in the shortest
-- form that reads back as the same double. decode(encode(v)) re-encodes to
-- the same text, which is what makes a checksum over it stable. Refused:
-- NaN and infinities, integers beyond 2^53 (a JSON reader may round them),
-- functions and other Lua-only values, non-string object keys, cycles.
--
--   canonical.array(t) -> t, marked as an array (so an empty one is []).

local cjson = require("freightliner.json") -- encode and null, as lua-cjson had

local M = {}

local MAX_SAFE = 2 ^ 53

local ARRAY = { __name = "freightliner.canonical.array" }

function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

local function number(v)
  if v ~= v or v == math.huge or v == -math.huge then
    return nil, "cannot encode NaN or infinity as JSON"
  end
  local i = math.tointeger(v)
  if i then
    if i > MAX_SAFE or i < -MAX_SAFE then
      return nil, string.format("cannot encode %d exactly as JSON (beyond 2^53)", i)
    end
    return string.format("%d", i)
  end
  for digits = 14, 17 do
    local s = string.format("%." .. digits .. "g", v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

local function is_array(t)
  local n = #t
  if n == 0 then return getmetatable(t) == ARRAY end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function encode(v, out, indent, depth, seen)
  local t = type(v)
  if v == nil or v == cjson.null then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "number" then
    local s, err = number(v)
    if not s then return nil, err end
    out[#out + 1] = s
  elseif t == "string" then
    out[#out + 1] = cjson.encode(v)
  elseif t == "table" then
    if seen[v] then return nil, "cannot encode a table that contains itself" end
    if depth > 100 then return nil, "cannot encode tables nested deeper than 100 levels" end
    seen[v] = true
    local nl, pad, inner = "", "", ""
    if indent then
      nl = "\n"
      pad = string.rep(indent, depth)
      inner = string.rep(indent, depth + 1)
    end
    if is_array(v) then
      if #v == 0 then
        out[#out + 1] = "[]"
        seen[v] = nil
        return true
      end
      out[#out + 1] = "[" .. nl
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," .. nl end
        out[#out + 1] = inner
        local ok, err = encode(v[i], out, indent, depth + 1, seen)
        if not ok then return nil, err end
      end
      out[#out + 1] = nl .. pad .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then
          return nil, string.format("cannot encode a %s key as a JSON object key", type(k))
        end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      if #keys == 0 then
        out[#out + 1] = "{}"
      else
        out[#out + 1] = "{" .. nl
        for i, k in ipairs(keys) do
          if i > 1 then out[#out + 1] = "," .. nl end
          out[#out + 1] = inner .. cjson.encode(k) .. (indent and ": " or ":")
          local ok, err = encode(v[k], out, indent, depth + 1, seen)
          if not ok then return nil, err end
        end
        out[#out + 1] = nl .. pad .. "}"
      end
    end
    seen[v] = nil
  else
    return nil, string.format("cannot encode a %s as JSON", t)
  end
  return true
end

function M.encode(v, opts)
  local out = {}
  local ok, err = encode(v, out, opts and opts.indent, 0, {})
  if not ok then return nil, err end
  return table.concat(out)
end

return M
