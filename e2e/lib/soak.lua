-- soak.lua SPEC.json: many copies through one engine in one process, for
-- the soak scenarios (e2e/scenarios/lifetimes.py; `make soak`).
--
-- SPEC: { jobs = { { src =, dst =, cancel = bool }, ... },
--         in_flight = N, workers = N, image_workers = N,
--         close_after = K      close job K's destination registry object
--                              while the job runs (later jobs open anew)
--         baseline_after = M   RSS baseline once M jobs have ended
--         seed = S }
-- Jobs marked `cancel` are cancelled at a random moment 0.05-1.5 s after
-- they are submitted (job:cancel()), mid-transfer. Prints one JSON line:
-- results (one per job, in order), max_in_flight, max_threads, thread_cap,
-- rss_baseline_kb, rss_end_kb, seconds.
local core = require("freightliner.core")
local json = fl.json

local f = assert(io.open(arg[1], "rb"))
local spec = assert(json.decode(f:read("a")))
f:close()

fl.configure({ workers = spec.workers, image_workers = spec.image_workers })
math.randomseed(spec.seed or 1)

local function status(field)
  local s = assert(io.open("/proc/self/status")):read("a")
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

-- the engine's pools, one download thread per blob worker, this thread,
-- and a few of libcurl's and the runtime's
local thread_cap = spec.image_workers + 2 * spec.workers + 1 + 6

local regs = {}
local function reg_for(host)
  if not regs[host] then regs[host] = assert(fl.registry(host)) end
  return regs[host]
end

local function image(ref, reg_cache)
  local host, repo, tag = ref:match("^([^/]+)/(.+):([^:/]+)$")
  return { registry = reg_cache(host), repository = repo, tag = tag }, host
end

local started = core.now()
local jobs = spec.jobs
local done, in_flight, max_in_flight, max_threads = 0, 0, 0, 0
local rss_baseline
local live = {}
local rss_trace, lua_trace = {}, {} -- RSS, Lua heap (kB) every 20 jobs ended

local function sample()
  local t = status("Threads")
  if t > max_threads then max_threads = t end
end

-- cancels the marked jobs when their moment comes, and samples threads
fl.spawn(function()
  while done < #jobs do
    local now = core.now()
    for _, l in pairs(live) do
      if l.cancel_at and now >= l.cancel_at then
        l.job:cancel()
        l.cancel_at = nil
      end
    end
    sample()
    fl.sleep(0.05)
  end
end)

local results = fl.parallel(jobs, function(j, i)
  local src = image(j.src, reg_for)
  local dst, dst_host = image(j.dst, reg_for)
  local job, msg, code = fl.submit(src, dst)
  if not job then
    done = done + 1
    return { ok = false, code = code, error = msg }
  end
  in_flight = in_flight + 1
  if in_flight > max_in_flight then max_in_flight = in_flight end
  live[i] = { job = job, cancel_at = j.cancel and (core.now() + 0.05 + math.random() * 1.45) or nil }
  if i == spec.close_after then
    -- close this job's destination registry object while the job runs
    local reg = regs[dst_host]
    regs[dst_host] = nil
    reg:close()
  end
  local r, m, c = job:wait()
  live[i] = nil
  in_flight = in_flight - 1
  done = done + 1
  if done == spec.baseline_after then
    collectgarbage()
    collectgarbage()
    rss_baseline = status("VmRSS")
  end
  if done % 20 == 0 then
    rss_trace[#rss_trace + 1] = status("VmRSS")
    lua_trace[#lua_trace + 1] = math.floor(collectgarbage("count"))
  end
  return { ok = r ~= nil, code = c, error = m }
end, { concurrency = spec.in_flight })

collectgarbage()
collectgarbage()
sample()
print(json.encode({
  results = results, max_in_flight = max_in_flight, max_threads = max_threads, thread_cap = thread_cap,
  rss_baseline_kb = rss_baseline or status("VmRSS"), rss_end_kb = status("VmRSS"),
  seconds = core.now() - started, counters = fl.counters(), rss_trace_kb = rss_trace, lua_trace_kb = lua_trace,
}))
return 0
