--- freightliner.copy: image copies and the coroutine scheduler.
--
--   fl.copy(src, dst, opts)      -> result | nil, message, CODE
--   fl.submit(src, dst, opts)    -> job | nil, message, CODE; job.id,
--                                   job:wait() -> as fl.copy, job:cancel()
--   fl.spawn(fn, ...)            -> run fn as a task (a coroutine)
--   fl.cancel([task])            -> cancel one task (its copy in flight and
--                                   every later one fail CANCELLED), or all
--   fl.wait()                    -> run every task to its end
--   fl.parallel(items, fn, {concurrency = N}) -> results, in item order
--
-- Cancelling a job or a task stops only its transfers (within a second);
-- other jobs and everything submitted later go on.
--
-- A copy is submitted to the C engine, which moves the bytes on its worker
-- threads. Inside a task, fl.copy suspends only that task's coroutine until
-- the engine reports the result, so many images are in flight at once while
-- each policy reads as straight-line code. At the top level of a script (no
-- task), fl.copy simply blocks. Lua runs only on the thread that owns the
-- state: the scheduler collects results with engine:wait().
--
-- src and dst are image references ("host:port/repo:tag", "docker://...",
-- "oci:PATH:TAG") or tables { registry = <fl.registry object>, repository =
-- "repo", tag = "tag" (or digest = "sha256:...") }. opts: platforms (list of
-- "os/arch[/variant]"), referrers, force, dry_run, registry options by host
-- (opts.registries[host] = {...} as for fl.registry).

local core = require("freightliner.core")
local registry = require("freightliner.registry")

local M = {}

local state = {
  engine = nil,
  config = {},         -- engine settings; unset ones take core.defaults
  endpoints = {},      -- spec -> registry object (one endpoint per store)
  registry_opts = {},  -- host -> options for fl.registry
  tasks = {},          -- coroutine -> true, for scheduled tasks
  ntasks = 0,
  waiting = {},        -- job id -> coroutine
  finished = {},       -- job id -> result (for top-level waits)
  runnable = {},       -- list of { co, value }
  sleepers = {},       -- list of { co, wake_at } for fl.sleep
  progress = nil,      -- function(engine) called while waiting
  task_job = {},       -- coroutine -> job id it waits for
  cancelled = setmetatable({}, { __mode = "k" }), -- cancelled tasks
  abandoned = {},      -- job id -> true: nobody will collect its result
}

local ENGINE_KEYS = { workers = true, attempts = true, image_workers = true }

--- Engine settings (before the first copy): workers (concurrent blob
-- transfers), attempts (per blob), image_workers (image jobs running at
-- once); defaults in core.defaults. Also `progress = function(engine)`.
function M.configure(opts)
  for k, v in pairs(opts) do
    if k ~= "progress" and not ENGINE_KEYS[k] then
      error(string.format("unknown engine setting '%s' (workers, attempts, image_workers, progress)", k), 2)
    end
    if k == "progress" then
      state.progress = v
    else
      state.config[k] = v
    end
  end
end

--- Options for a registry host, used whenever a reference names it.
function M.registry_options(host, opts)
  state.registry_opts[host] = opts
  state.endpoints[host] = nil
end

function M.engine()
  if not state.engine then
    local e, msg, code = core.engine.new(state.config)
    if not e then error(string.format("cannot start the engine: %s (%s)", msg, code), 2) end
    -- SIGINT/SIGTERM with copies in flight: cancel them cleanly first
    core.engine.trap_signals()
    state.engine = e
  end
  return state.engine
end

-- One registry object per store, so the engine recognises shared blobs.
local function open_store(spec, host)
  local reg = state.endpoints[spec]
  if reg then return reg end
  local msg, code
  reg, msg, code = registry.open(spec, state.registry_opts[host or spec])
  if not reg then return nil, msg, code end
  state.endpoints[spec] = reg
  return reg
end

--- The registry object fl.copy uses for store `spec` ("host:port" or
-- "oci:PATH"), opened on first use, when `opts` are the options it is opened
-- with (those given to fl.registry_options for spec, or nil for none).
-- Listing through it lets the copies that follow reuse its scheme probe,
-- tokens and connections. Returns false when opts differ (open your own),
-- or nil, message, CODE when it cannot be opened. Do not close it.
function M.store(spec, opts)
  if opts ~= state.registry_opts[spec] then return false end
  return open_store(spec)
end

--- Resolve src/dst into { registry, repository, reference, name }.
function M.resolve(x)
  if type(x) == "table" then
    if not x.registry then return nil, "image table needs a registry", "INVALID" end
    local reg = x.registry
    if type(reg) == "string" then
      local msg, code
      reg, msg, code = open_store(reg)
      if not reg then return nil, msg, code end
    end
    local repo, reference = x.repository, x.digest or x.tag
    if not repo and x.ref then
      local tag, digest
      repo, tag, digest = registry.split(x.ref)
      reference = digest or tag
    end
    return { registry = reg, repository = repo or "image", reference = reference or "latest",
             tag = x.tag, name = string.format("%s/%s:%s", reg.spec, repo, reference or "latest") }
  end
  if type(x) ~= "string" then return nil, "an image must be a reference string or a table", "INVALID" end
  local path = x:match("^oci:(.+)$")
  if path then
    -- oci:PATH[:TAG]; a tag never contains '/', so the last ':' splits
    local dir, tag = path:match("^(.*[^/]):([%w_][%w_.%-]*)$")
    dir = dir or path
    local reg, msg, code = open_store("oci:" .. dir)
    if not reg then return nil, msg, code end
    return { registry = reg, repository = "image", reference = tag or "latest", tag = tag or "latest",
             name = x }
  end
  local r, msg, code = core.ref.parse((x:gsub("^docker://", "")))
  if not r then return nil, msg, code end
  local reg
  reg, msg, code = open_store(r.api_host, r.domain)
  if not reg then return nil, msg, code end
  return { registry = reg, repository = r.repository, reference = r.digest or r.tag,
           tag = r.tag, digest = r.digest, name = r.familiar }
end

local function in_task()
  local co, main = coroutine.running()
  return not main and state.tasks[co]
end

local function clock()
  return core.now()
end

-- Wake tasks whose sleep is over; returns ms until the next wake (or nil).
local function wake_sleepers()
  local now, next_ms = clock(), nil
  local still = {}
  for _, s in ipairs(state.sleepers) do
    if s[2] <= now then
      state.runnable[#state.runnable + 1] = { s[1] }
    else
      still[#still + 1] = s
      local ms = math.ceil((s[2] - now) * 1000)
      next_ms = next_ms and math.min(next_ms, ms) or ms
    end
  end
  state.sleepers = still
  return next_ms
end

-- Wait for one job (engine:wait), dispatching results that belong to tasks.
local function pump(timeout)
  local e = M.engine()
  local id, result = e:wait(timeout)
  if not id then
    if state.progress then state.progress(e) end
    return
  end
  local co = state.waiting[id]
  if co then
    state.waiting[id] = nil
    state.task_job[co] = nil
    state.runnable[#state.runnable + 1] = { co, result }
  elseif state.abandoned[id] then
    state.abandoned[id] = nil
  else
    state.finished[id] = result
  end
end

local function finish(result)
  if result.ok then return result end
  return nil, result.error, result.code
end

local Job = {}
Job.__index = Job

--- Wait for the job's result: result | nil, message, CODE (as fl.copy).
function Job:wait()
  local result = self.result
  if not result then
    if in_task() then
      local co = coroutine.running()
      state.task_job[co] = self.id
      result = coroutine.yield(self.id)
    else
      while state.finished[self.id] == nil do pump(200) end
      result = state.finished[self.id]
      state.finished[self.id] = nil
    end
    self.result = result
  end
  result.source = self.source
  result.destination = self.destination
  return finish(result)
end

--- Stop this job's transfers (its result says CANCELLED); true if it was
-- still queued or running. Other jobs are not affected.
function Job:cancel()
  if self.result or not state.engine then return false end
  return state.engine:cancel(self.id)
end

--- Submit one image copy and return its job at once (see the module
-- comment); job:wait() collects the result.
function M.submit(src, dst, opts)
  opts = opts or {}
  local co = in_task() and coroutine.running()
  if co and state.cancelled[co] then return nil, "cancelled", "CANCELLED" end
  local s, msg, code = M.resolve(src)
  if not s then return nil, msg, code end
  local d
  d, msg, code = M.resolve(dst)
  if not d then return nil, msg, code end
  local e = M.engine()
  -- a destination tag, or "" to push by digest only
  local dst_tag = d.tag or (d.digest and "") or d.reference
  local id
  id, msg, code = e:submit(s.registry.ep, s.repository, s.reference, d.registry.ep,
    d.repository, dst_tag, opts)
  if not id then return nil, msg, code end
  return setmetatable({ id = id, source = s.name, destination = d.name }, Job)
end

--- Copy one image (with everything it references). See the module comment.
function M.copy(src, dst, opts)
  local job, msg, code = M.submit(src, dst, opts)
  if not job then return nil, msg, code end
  return job:wait()
end

local function resume(co, value)
  local ok, yielded = coroutine.resume(co, value)
  if not ok then
    state.tasks[co] = nil
    state.ntasks = state.ntasks - 1
    error(yielded, 0)
  end
  if coroutine.status(co) == "dead" then
    state.tasks[co] = nil
    state.task_job[co] = nil
    state.ntasks = state.ntasks - 1
  elseif math.type(yielded) == "integer" then
    state.waiting[yielded] = co
  elseif type(yielded) == "table" and yielded.sleep_until then
    state.sleepers[#state.sleepers + 1] = { co, yielded.sleep_until }
  else
    -- a plain coroutine.yield() from a task: run it again later
    state.runnable[#state.runnable + 1] = { co }
  end
end

local function traceback(msg)
  return debug.traceback(tostring(msg), 2)
end

-- Block the whole thread (no task to switch to) for ms milliseconds;
-- engine:wait doubles as a sleep that still collects finished jobs.
local function sleep_ms(ms)
  local e = M.engine()
  if e:pending() > 0 then pump(ms) else core.sleep(ms / 1000) end
end

--- Sleep: inside a task, only the task waits; at the top level, blocks.
function M.sleep(seconds)
  if in_task() then
    coroutine.yield({ sleep_until = clock() + seconds })
  else
    sleep_ms(seconds * 1000)
  end
end

--- Start fn(...) as a task; it runs when fl.wait() (or fl.parallel) runs.
function M.spawn(fn, ...)
  local args = table.pack(...)
  local co = coroutine.create(function()
    local ok, err = xpcall(fn, traceback, table.unpack(args, 1, args.n))
    if not ok then error(err, 0) end
  end)
  state.tasks[co] = true
  state.ntasks = state.ntasks + 1
  state.runnable[#state.runnable + 1] = { co }
  return co
end

--- Run every spawned task to its end. An error in a task is raised here
-- once the other tasks have been run to their end.
function M.wait()
  if in_task() then error("fl.wait() cannot be called from inside a task", 2) end
  local first_error
  while state.ntasks > 0 do
    if #state.runnable > 0 then
      local batch = state.runnable
      state.runnable = {}
      for _, item in ipairs(batch) do
        local ok, err = pcall(resume, item[1], item[2])
        if not ok and not first_error then first_error = err end
      end
    elseif next(state.waiting) or #state.sleepers > 0 then
      local next_ms = wake_sleepers()
      if #state.runnable == 0 then
        if next(state.waiting) then
          pump(math.min(200, next_ms or 200))
        else
          sleep_ms(next_ms or 10)
        end
        wake_sleepers()
      end
    else
      break -- tasks blocked on something other than the engine
    end
  end
  if first_error then error(first_error, 0) end
end

--- Run fn(item, index) for every item, at most `concurrency` at a time, and
-- return the list of results (first return value of each call).
function M.parallel(items, fn, opts)
  local n = math.max(1, math.tointeger((opts or {}).concurrency) or state.config.workers or core.defaults.workers)
  local results = {}
  local next_index = 0
  local function worker()
    while true do
      next_index = next_index + 1
      local i = next_index
      if i > #items then return end
      results[i] = fn(items[i], i)
    end
  end
  for _ = 1, math.min(n, #items) do M.spawn(worker) end
  if in_task() then
    error("fl.parallel() cannot be nested inside a task", 2)
  end
  M.wait()
  return results
end

--- Engine counters: bytes_transferred, blobs_copied/skipped/mounted,
-- manifests_pushed, images_replicated/up_to_date/failed, retries.
function M.counters()
  return M.engine():counters()
end

--- fl.cancel(task): cancel one task (a coroutine from fl.spawn): the copy
-- it waits for stops, and every copy it submits later returns CANCELLED.
-- Returns false when the task has ended already. fl.cancel(): cancel the
-- engine (every job, for good; after SIGINT/SIGTERM).
function M.cancel(task)
  if task == nil then
    if state.engine then state.engine:cancel() end
    return true
  end
  if type(task) ~= "thread" then
    error("fl.cancel: expected a task from fl.spawn (or nothing, to cancel everything)", 2)
  end
  if not state.tasks[task] then return false end -- it has ended
  state.cancelled[task] = true
  local id = state.task_job[task]
  if id and state.engine then state.engine:cancel(id) end
  return true
end

--- After an interrupted REPL statement: cancel the jobs it left running
-- and forget its tasks, so the next statement starts clean.
function M.abandon()
  if state.engine then
    state.engine:cancel_jobs()
    for _, p in ipairs(state.engine:progress()) do state.abandoned[p.id] = true end
  end
  state.tasks, state.ntasks, state.waiting, state.runnable, state.sleepers = {}, 0, {}, {}, {}
  state.task_job, state.finished = {}, {}
end

--- Shut the engine down (joins its threads). Idempotent.
function M.shutdown()
  if state.engine then
    state.engine:close()
    state.engine = nil
  end
end

return M
