--- freightliner.progress: a one-line progress display on stderr.
--
-- Shown only when stderr is a terminal (and not turned off with
-- --no-progress or replaced by --log-format json); image names in it are
-- escaped (freightliner.printable). It reads the engine's counters and per-job progress; it
-- never slows the copy down: it is redrawn at most five times a second from
-- the scheduler's wait loop, on the Lua thread.

local core = require("freightliner.core")

local M = {}

local function human(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n = n / 1024
    i = i + 1
  end
  return i == 1 and string.format("%d %s", n, units[i]) or string.format("%.1f %s", n, units[i])
end
M.human = human

local function now()
  return core.now()
end

--- True when a progress display makes sense: stderr is a terminal and log
-- lines are text (with --log-format json every stderr line is JSON).
function M.wanted()
  if require("freightliner.log").json() then return false end
  return core.fs and core.fs.isatty and core.fs.isatty(2) or false
end

--- A display; total_images may be nil when unknown.
function M.new(total_images)
  local self = { total = total_images, started = now(), last = 0, shown = false }

  function self.update(engine)
    local t = now()
    if t - self.last < 0.2 then return end
    self.last = t
    local c = engine:counters()
    local done = c.images_replicated + c.images_up_to_date + c.images_failed
    local jobs = engine:progress()
    local current = jobs[1] and require("freightliner.printable").escape(jobs[1].name) or ""
    local rate = c.bytes_transferred / math.max(t - self.started, 0.001)
    local line = string.format("%s%d images  %s  %s/s  %d in flight  %s",
      self.total and string.format("%d/", done) or "", self.total or done,
      human(c.bytes_transferred), human(rate), #jobs, current)
    io.stderr:write("\r\27[K", line:sub(1, 110))
    io.stderr:flush()
    self.shown = true
  end

  function self.finish()
    if self.shown then io.stderr:write("\r\27[K") io.stderr:flush() end
  end

  return self
end

return M
