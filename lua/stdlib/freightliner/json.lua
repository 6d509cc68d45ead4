--- freightliner.json: JSON for the stdlib, on lua-cjson.
--
-- cjson decodes every number as a float under Lua 5.4; manifests are full of
-- sizes, so decode() turns integral floats back into integers. Errors are
-- returned (`nil, message, "INVALID"`), never raised.
local cjson = require("cjson.safe")

local M = {}

M.null = cjson.null

local function integers(v)
  local t = type(v)
  if t == "number" then
    return math.tointeger(v) or v
  elseif t == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  end
  return v
end

function M.decode(s)
  local v, err = cjson.decode(s)
  if v == nil then
    return nil, "invalid JSON: " .. tostring(err), "INVALID"
  end
  return integers(v)
end

function M.encode(v)
  local s, err = cjson.encode(v)
  if not s then error("cannot encode JSON: " .. tostring(err), 2) end
  return s
end

return M
