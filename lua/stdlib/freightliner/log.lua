--- freightliner.log: logging for Lua code, through the C logger
-- (core.log), so a line looks the same whoever wrote it.
--
--   log.configure{ level = "info", format = "text"|"json", run_id = "..." }
--       -> true | nil, message      (an unknown level or format)
--   log.set_level(name) / log.set_format(name) -> true | nil, message
--   log.level() -> name;  log.enabled(level) -> boolean
--   log.debug(fmt, ...), log.info, log.warn, log.error
--       string.format is applied when there are arguments after fmt
--   log.log(level, message [, image])
--   log.image(ref) -> a logger whose lines name that image
--
-- Lines go to stderr: `TIME LEVEL [image: ]message`, or with format json
-- one object per line with time, level, run_id, image and message.

local core = require("freightliner.core")

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
  if o.run_id then core.log.set_run_id(o.run_id) end
  return true
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

function M.log(level, msg, image)
  if core.log.enabled(level) then core.log.log(level, tostring(msg), image) end
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
