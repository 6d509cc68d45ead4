--- freightliner.budget: keep a run inside a registry's pull budget.
--
--   local b = budget.new{ [min_remaining = 20,] [log = fn(message)] }
--   b:wait(reg)   -- before each image whose source is fl.registry `reg`
--
-- The floor is reg.min_remaining (fl.registry option `min_remaining`, which
-- a sync file's `defaults: rate_limit: { min_remaining: N }` sets for every
-- registry) or else the one given to new(); with neither, wait() returns.
--
-- Docker Hub states the pulls left in every answer (`ratelimit-remaining:
-- 76;w=21600`: 76 left in a 6-hour window; `ratelimit-limit: 100;w=21600`);
-- the C client keeps the last values per registry (reg:stats()). When the
-- remaining budget of a source is below min_remaining, wait() pauses the
-- task that called it (other tasks finish what they started), logs when the
-- run will go on, and sleeps: the window divided by the limit for each pull
-- missing (the rate at which a sliding window gives pulls back), at least 1
-- s and at most the window. The first image, and the first after a pause,
-- goes ahead alone as the probe (its requests bring fresh headers); the
-- others wait for what it learns. A registry that sends no such headers is
-- never paused.

local core = require("freightliner.core")
local copy = require("freightliner.copy")

local M = {}

M.POLL = 0.2 -- seconds between looks while a probe is out

local Budget = {}
Budget.__index = Budget

local function check(n, where)
  if n ~= nil and (math.type(n) ~= "integer" or n < 0) then
    error(where .. ": min_remaining must be a non-negative integer", 3)
  end
  return n
end

function M.new(opts)
  opts = opts or {}
  return setmetatable({ min = check(opts.min_remaining, "budget.new"), log = opts.log, stores = {} }, Budget)
end

-- How long to pause for `missing` pulls.
local function pause_for(s, missing)
  local window = s.ratelimit_window or 3600
  local limit = s.ratelimit_limit
  local secs = window
  if limit and limit > 0 then secs = window * missing / limit end
  return math.max(1, math.min(window, secs))
end

--- Before an image from `reg`: returns at once, or after a pause. Returns
-- true when the caller is the probe: it must call b:probed(reg) when its
-- image is done.
function Budget:wait(reg)
  local min = check(reg.min_remaining, "fl.registry option") or self.min
  if not min then return false end
  local st = self.stores[reg]
  if not st then
    st = {}
    self.stores[reg] = st
  end
  while true do
    local s = reg:stats()
    local left = s.ratelimit_remaining
    local now = core.now()
    if st.until_t and now < st.until_t then
      copy.sleep(st.until_t - now)
    elseif st.probe then
      copy.sleep(M.POLL) -- wait for what the probe learns
    elseif st.need_probe or not st.known then
      st.probe, st.need_probe = true, false
      return true
    elseif not left or left >= min then
      st.until_t = nil
      return false
    else
      local secs = pause_for(s, min - left)
      st.until_t, st.need_probe = now + secs, true
      self.paused = (self.paused or 0) + 1
      local msg = string.format("%s: %d pulls left (rate_limit.min_remaining %d); pausing %.0f s, until %s UTC",
        reg.spec, left, min, secs, os.date("!%H:%M:%S", math.floor(core.fs.time() + secs)))
      if self.log then self.log(msg) else core.log.log("warn", msg) end
    end
  end
end

--- The probe's image is done: the registry's answers to it are known.
function Budget:probed(reg)
  local st = self.stores[reg]
  if st then st.probe, st.known = false, true end
end

return M
