--- freightliner.json: JSON for the stdlib, on core.json (jansson, built
-- into the binary: no Lua C module is loaded from the system).
--
-- Integers stay integers and other numbers are floats, both ways. Errors
-- of decode() are returned (`nil, message, "INVALID"`), never raised;
-- encode() raises on a value JSON cannot hold (a function, NaN, a table
-- with other than string or integer keys), which is a programming error.
local core = require("freightliner.core")

local M = {}

M.null = core.json.null

local ARRAY = { __jsontype = "array" }

--- Mark a list so that it encodes as a JSON array even when empty.
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

function M.decode(s)
  if type(s) ~= "string" then return nil, "invalid JSON: expected a string, got " .. type(s), "INVALID" end
  local v, err = core.json.decode(s)
  if v == nil and err then
    return nil, "invalid JSON: " .. tostring(err), "INVALID"
  end
  return v
end

function M.encode(v)
  local s, err = core.json.encode(v)
  if not s then error(tostring(err), 2) end
  return s
end

return M
