--- freightliner.log: logging for Lua code, through the C logger
-- (core.log), so a line looks the same whoever wrote it.
--
--   log.configure{ level = "info", format = "text"|"json", run_id = "..." }
--       -> true | nil, message      (an unknown level or format)
--   log.set_level(name) / log.set_format(name) -> true | nil, message
--   log.level() -> name;  log.enabled(level) -> boolean
--   log.debug(fmt, ...), log.info, log.warn, log.error
--       string.format is applied when there are arguments after fmt
--   log.log(level, message [, image [, fields]])
--       fields: a table of more members for a JSON line (counters, codes);
--       a text line carries only the message
--   log.image(ref) -> a logger whose lines name that image
--   log.new_run_id() -> a fresh run id (time + random), set as the run id
--   log.run_id() -> the run id of this process ("" before one is set)
--   log.json() -> true when lines are JSON
--
-- Lines go to stderr: `TIME LEVEL [image: ]message`, or with format json
-- one object per line with time, level, run_id, image, message and the
-- fields. Text lines escape control characters (see freightliner.printable).

local core = require("freightliner.core")
local canonical = require("freightliner.canonical")

local M = {}

M.LEVELS = { "debug", "info", "warn", "error", "off" }
local known = {}
for _, l in ipairs(M.LEVELS) do known[l] = true end
known.warning = true

function M.set_level(name)
  if not known[name] then
    return nil, string.format("unknown log level '%s' (expected debug, info, warn, error or off)", tostring(name))
  end
  core.log.set_level(name)
  return true
end

function M.set_format(name)
  if name ~= "text" and name ~= "json" then
    return nil, string.format("unknown log format '%s' (expected text or json)", tostring(name))
  end
  core.log.set_json(name == "json")
  M.format = name
  return true
end

function M.configure(o)
  o = o or {}
  if o.level then
    local ok, err = M.set_level(o.level)
    if not ok then return nil, err end
  end
  if o.format then
    local ok, err = M.set_format(o.format)
    if not ok then return nil, err end
  end
  if o.run_id then
    core.log.set_run_id(o.run_id)
    M.current_run_id = o.run_id
  end
  return true
end

M.current_run_id = ""

function M.run_id()
  return M.current_run_id
end

function M.json()
  return M.format == "json"
end

local function random_hex(n)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(n)
  if f then f:close() end
  if not bytes or #bytes < n then
    bytes = string.format("%0" .. (2 * n) .. "x", math.random(0, 2 ^ 31)):sub(1, n)
  end
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- A new run id, "YYYYMMDDTHHMMSSZ-" and 8 random hex digits, made current.
function M.new_run_id()
  local id = os.date("!%Y%m%dT%H%M%SZ-") .. random_hex(4)
  M.configure{ run_id = id }
  return id
end

function M.level()
  return core.log.get_level()
end

function M.enabled(level)
  return core.log.enabled(level)
end

local function message(fmt, ...)
  if select("#", ...) > 0 then return string.format(fmt, ...) end
  return tostring(fmt)
end

local function members(fields)
  if not fields or next(fields) == nil then return nil end
  local s = canonical.encode(fields)
  return s and s:sub(2, -2) or nil
end

function M.log(level, msg, image, fields)
  if core.log.enabled(level) then core.log.log(level, tostring(msg), image, members(fields)) end
end

for _, level in ipairs({ "debug", "info", "warn", "error" }) do
  M[level] = function(fmt, ...)
    if core.log.enabled(level) then core.log.log(level, message(fmt, ...)) end
  end
end

function M.image(ref)
  local l = {}
  for _, level in ipairs({ "debug", "info", "warn", "error" }) do
    l[level] = function(fmt, ...)
      if core.log.enabled(level) then core.log.log(level, message(fmt, ...), ref) end
    end
  end
  return l
end

return M
