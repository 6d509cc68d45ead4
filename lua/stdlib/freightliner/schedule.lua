--- freightliner.schedule: when a sync entry runs under `freightliner serve`.
--
-- A sync entry may have `interval: 15m` (a whole number of s, m, h or d;
-- at least 1s) or `schedule: "*/15 * * * *"` (five-field cron, UTC; see
-- src/serve/cron.h), not both, and an optional `name:` used in URLs and
-- metric labels. Every run gets a small random jitter (a tenth of the
-- interval, at most 30 s) so that many entries do not start at once.
local core = require("freightliner.core")

local M = {}

M.MAX_JITTER = 30

local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

--- Seconds of an interval ("90s", "15m", "2h", "1d") | nil, message.
function M.interval(s)
  local n, unit = tostring(s):match("^(%d+)([smhd])$")
  n = math.tointeger(tonumber(n))
  if not n or n < 1 then
    return nil, string.format("expected an interval like 30s, 15m, 2h or 1d, got '%s'", tostring(s))
  end
  return n * UNITS[unit]
end

--- nil if expr is a valid cron expression, else a message.
function M.check_cron(expr)
  local _, msg = core.serve.cron_next(expr, 0)
  if msg then return "schedule: " .. msg end
end

--- nil if s is a valid interval, else a message (for the config schema).
function M.check_interval(s)
  local _, msg = M.interval(s)
  return msg
end

--- nil if name may name a sync entry (it appears in URLs), else a message.
function M.check_name(name)
  if #name > 64 or not name:match("^[%w_%-][%w%._%-]*$") then
    return string.format("'%s' must be 1-64 letters, digits, '.', '_' or '-' (not starting with '.')", name)
  end
end

--- The next time (Unix seconds, possibly fractional) entry runs after
-- `now`, with jitter; nil for an entry with neither interval nor schedule.
function M.next_run(entry, now, random)
  random = random or math.random
  if entry.interval then
    local every = assert(M.interval(entry.interval))
    return now + every + random() * math.min(every / 10, M.MAX_JITTER)
  elseif entry.schedule then
    local t = core.serve.cron_next(entry.schedule, math.floor(now))
    if not t then return nil end
    return t + random() * M.MAX_JITTER / 10
  end
end

return M
