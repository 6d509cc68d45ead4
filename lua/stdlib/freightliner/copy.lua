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
-- A copy is submitted to the C engine, which moves the bytes on its worker
-- threads. Inside a task, fl.copy suspends only that task's coroutine until
-- the engine reports the result, so many images are in flight at once while
-- each policy reads as straight-line code. At the top level of a script (no
-- task), fl.copy simply blocks. Lua runs only on the thread that owns the
-- state: the scheduler collects results with engine:wait().
-- Cancelling a job or a task stops only its transfers (within a second);
-- other jobs and everything submitted later go on.
--
-- src and dst are image references ("host:port/repo:tag", "docker://...",
-- "oci:PATH:TAG", "oci-archive:FILE[:TAG]", "docker-archive:FILE[:NAME:TAG]";
-- archives written to are finished by fl.finish_archives()) or tables { registry = <fl.registry object>, repository =
-- "repo", tag = "tag" (or digest = "sha256:...") }. opts: platforms (list of
-- "os/arch[/variant]"), referrers, force, dry_run, registry options by host
-- (opts.registries[host] = {...} as for fl.registry), verify = { keys =
-- {"cosign.pub"}, require = "any" | "all" } (copy only if signed by the keys,
-- else nil, reason, "UNVERIFIED"; see freightliner.verify).

local core = require("freightliner.core")
local registry = require("freightliner.registry")
local archive = require("freightliner.archive")
local verify = require("freightliner.verify")

local M = {}

local state = {
  engine = nil,
  config = {},         -- engine settings; unset ones take core.defaults
  endpoints = {},      -- spec -> registry object (one endpoint per store)
  registry_opts = {},  -- host -> options for fl.registry
  tasks = {},          -- coroutine -> task handle, for scheduled tasks
  ntasks = 0,
  waiting = {},        -- job id -> coroutine
  finished = {},       -- job id -> result (for top-level waits)
  runnable = {},       -- list of { co, value }
  sleepers = {},       -- list of { co, wake_at } for fl.sleep
  progress = nil,      -- function(engine) called while waiting
  errors = {},         -- ended tasks that raised, for fl.wait to report
  counted = {},        -- counters of engines fl.configure replaced
  task_job = {},       -- coroutine -> job id it waits for
  cancelled = setmetatable({}, { __mode = "k" }), -- coroutines of cancelled tasks
  abandoned = {},      -- job id -> true: nobody will collect its result
}

local CONFIGURE_KEYS = { workers = "integer", attempts = "integer", image_workers = "integer",
                         progress = "function",
                         max_image_manifests = "integer", max_image_manifest_bytes = "integer" }
M.CONFIGURE_KEYS = CONFIGURE_KEYS

-- Raise on a key not in `known` (a set), naming the closest valid one.
local function check_keys(what, opts, known, level)
  return require("freightliner.schema").check_keys(what, opts, known, level + 1)
end
M.check_keys = check_keys

--- Engine settings: workers (concurrent blob transfers), attempts (per
-- blob), image_workers (image jobs running at once), the per-image limits
-- max_image_manifests and max_image_manifest_bytes (defaults in
-- core.defaults and README, "Limits"), progress = function(engine). After the engine started, a new
-- worker count or attempts applies to the next engine: the idle engine is
-- shut down and restarted on the next copy; with copies in flight it
-- raises (it is never silently ignored).
function M.configure(opts)
  check_keys("fl.configure", opts, CONFIGURE_KEYS, 2)
  for k, v in pairs(opts) do
    if k == "progress" then
      if v ~= nil and type(v) ~= "function" then error("fl.configure: progress must be a function", 2) end
      state.progress = v
    else
      if math.type(v) ~= "integer" or v < 1 then
        error(string.format("fl.configure: %s must be a whole number >= 1", k), 2)
      end
      if state.engine and state.config[k] ~= v then
        if state.engine:pending() > 0 then
          error(string.format("fl.configure: cannot change %s with copies in flight; "
            .. "call it before the copies or after fl.wait()", k), 2)
        end
        -- its counters carry over: fl.counters() counts the whole process
        local c = state.engine:counters()
        for name, n in pairs(c) do
          if math.type(n) == "integer" then state.counted[name] = (state.counted[name] or 0) + n end
        end
        state.engine:close()
        state.engine = nil
      end
      state.config[k] = v
    end
  end
end

--- The current engine settings (for replicate.run to restore them).
function M.settings()
  return { workers = state.config.workers, attempts = state.config.attempts, progress = state.progress }
end

function M.restore(saved)
  state.progress = saved.progress
  M.configure{ workers = saved.workers, attempts = saved.attempts }
end

-- The key of a store in the cache: the spec, with Docker Hub's names
-- folded into the host its API is served from (as core.ref gives it).
local function store_key(spec)
  if spec == "docker.io" or spec == "index.docker.io" then return "registry-1.docker.io" end
  return spec
end

--- Options for a registry host, used whenever a reference names it
-- ("docker.io" and "registry-1.docker.io" are one host). Unknown option
-- keys raise, naming the closest valid one.
function M.registry_options(host, opts)
  if type(host) ~= "string" or host == "" then
    error("fl.registry_options: expected a registry host like 'registry.example.com:5000'", 2)
  end
  registry.check_options("fl.registry_options", opts, 2)
  local key = store_key(host)
  state.registry_opts[key] = opts
  -- the old object is dropped, not closed: copies in flight may still use it
  state.endpoints[key] = nil
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
local function open_store(spec, host, source)
  local key = store_key(spec)
  local reg = state.endpoints[key]
  if reg then return reg end
  local msg, code
  local opts = state.registry_opts[key] or (host and state.registry_opts[store_key(host)])
  if source and key:match("^oci:") then opts = { create = false } end -- reading never creates a layout
  reg, msg, code = registry.open(key, opts)
  if not reg then return nil, msg, code end
  state.endpoints[key] = reg
  return reg
end

--- Write every archive fl.copy wrote into (oci-archive:, docker-archive:
-- destinations) and forget them: true | nil, message, CODE.
function M.finish_archives()
  return archive.finish(state.endpoints)
end

--- The registry object fl.copy uses for store `spec` ("host:port" or
-- "oci:PATH"), opened on first use with the options given to
-- fl.registry_options. Its :stats() are those of the copies' requests;
-- listing through it reuses their scheme probe, tokens and connections.
-- Returns the object | nil, message, CODE. Do not close it (fl.copy owns
-- it; fl.registry_options for the host replaces it).
function M.endpoint(spec)
  if type(spec) ~= "string" or spec == "" then
    error("fl.endpoint: expected a registry spec like 'host:port' or 'oci:PATH'", 2)
  end
  return open_store(spec)
end

--- M.endpoint(spec) when `opts` are the options fl.copy uses for spec
-- (those given to fl.registry_options, or nil for none); false when they
-- differ (open your own), or nil, message, CODE.
function M.store(spec, opts)
  if opts ~= state.registry_opts[store_key(spec)] then return false end
  return open_store(spec)
end

--- Resolve src/dst into { registry, repository, reference, name }. side:
-- "source" (the default: an OCI layout that does not exist is an error,
-- not created) or "destination" (layouts are created, archives opened for
-- writing).
function M.resolve(x, side)
  local source = side ~= "destination"
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
  local akind, arest = archive.parse(x)
  if akind then return archive.resolve(state.endpoints, x, akind, arest, side) end
  local path = x:match("^oci:(.+)$")
  if path then
    -- oci:PATH[:TAG]; a tag never contains '/', so the last ':' splits
    local dir, tag = path:match("^(.*[^/]):([%w_][%w_.%-]*)$")
    dir = dir or path
    local reg, msg, code = open_store("oci:" .. dir, nil, source)
    if not reg then return nil, msg, code end
    return { registry = reg, repository = "image", reference = tag or "latest", tag = tag or "latest",
             name = x }
  end
  -- http://host/... and https://host/... ask for that scheme (as registry specs do)
  local scheme, rest = x:gsub("^docker://", ""):match("^(https?)://(.+)$")
  local r, msg, code = core.ref.parse(rest or (x:gsub("^docker://", "")))
  if not r then return nil, msg, code end
  local reg
  reg, msg, code = open_store(scheme and (scheme .. "://" .. r.api_host) or r.api_host, r.domain)
  if not reg then return nil, msg, code end
  return { registry = reg, repository = r.repository, reference = r.digest or r.tag,
           tag = r.tag, digest = r.digest, name = r.familiar }
end

local function in_task()
  local co, main = coroutine.running()
  return not main and state.tasks[co]
end
--- True inside a task of fl.spawn/fl.parallel (where waiting suspends only
-- the task).
M.in_task = in_task

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

-- Scheduler yields carry this private marker first, so a task that
-- calls coroutine.yield(42) itself is never taken for a wait on job 42.
local YIELD = setmetatable({}, { __name = "freightliner.copy.yield" })

local COPY_KEYS = { platforms = true, referrers = true, force = true, dry_run = true, verify = true }
M.COPY_KEYS = COPY_KEYS

local Job = {}
Job.__index = Job
Job.__name = "freightliner.job"

--- Wait for the job's result: result | nil, message, CODE (as fl.copy).
-- Inside a task only the task waits; at the top level it blocks.
function Job:wait()
  local result = self.result
  if not result then
    if in_task() then
      local co = coroutine.running()
      state.task_job[co] = self.id
      result = coroutine.yield(YIELD, "job", self.id)
    else
      while state.finished[self.id] == nil do pump(200) end
      result = state.finished[self.id]
      state.finished[self.id] = nil
    end
    self.result = result
  end
  result.source = self.source
  result.destination = self.destination
  result.verified = self.verified
  return finish(result)
end

--- Stop this job's transfers (its result says CANCELLED); true if it was
-- still queued or running. Other jobs are not affected.
function Job:cancel()
  if self.result or not state.engine then return false end
  return state.engine:cancel(self.id)
end

--- Submit one image copy and return its job at once (see the module
-- comment); job:wait() collects the result. Unknown option keys raise,
-- naming the closest valid one.
function M.submit(src, dst, opts)
  check_keys("fl.submit", opts, COPY_KEYS, 2)
  opts = opts or {}
  local co = in_task() and coroutine.running()
  if co and state.cancelled[co] then return nil, "cancelled", "CANCELLED" end
  local s, msg, code = M.resolve(src, "source")
  if not s then return nil, msg, code end
  local d
  d, msg, code = M.resolve(dst, "destination")
  if not d then return nil, msg, code end
  -- signed by our keys? Then copy exactly the digest that was verified.
  local verified
  if opts.verify then
    verified, msg, code = verify.image(s, verify.options(opts.verify, 2))
    if not verified then return nil, msg, code end
  end
  local e = M.engine()
  -- a destination tag, or "" to push by digest only
  local dst_tag = d.tag or (d.digest and "") or d.reference
  local id
  id, msg, code = e:submit(s.registry.ep, s.repository, verified and verified.digest or s.reference,
    d.registry.ep, d.repository, dst_tag, opts)
  if not id then return nil, msg, code end
  return setmetatable({ id = id, source = s.name, destination = d.name, verified = verified }, Job)
end

--- Copy one image (with everything it references). See the module comment.
-- Unknown option keys raise, naming the closest valid one.
function M.copy(src, dst, opts)
  check_keys("fl.copy", opts, COPY_KEYS, 2)
  local job, msg, code = M.submit(src, dst, opts)
  if not job then return nil, msg, code end
  return job:wait()
end

-- ---- tasks ------------------------------------------------------------------

local Task = {}
Task.__index = Task
Task.__name = "freightliner.task"

function Task:__tostring()
  return string.format("task %d (%s)", self.id, self.st)
end

local function task_ended(task)
  state.tasks[task.co] = nil
  state.task_job[task.co] = nil
  state.ntasks = state.ntasks - 1
  task.st = task.error and "failed" or "done"
  if #task.waiters > 0 then task.observed = true end
  if task.error and not task.observed then state.errors[#state.errors + 1] = task end
  for _, co in ipairs(task.waiters) do state.runnable[#state.runnable + 1] = { co, task } end
  task.waiters = {}
end

local function resume(task, value)
  task.blocked_on = nil
  local ok, marker, kind, arg = coroutine.resume(task.co, value)
  if not ok then -- the task body never raises (it is wrapped); an internal error
    task.error = tostring(marker)
    task_ended(task)
    return
  end
  if coroutine.status(task.co) == "dead" then
    task_ended(task)
  elseif marker ~= YIELD then
    -- the task itself called coroutine.yield(...): run it again later
    state.runnable[#state.runnable + 1] = { task.co }
  elseif kind == "job" then
    state.waiting[arg] = task.co
    task.blocked_on = "copy job " .. tostring(arg)
  elseif kind == "sleep" then
    state.sleepers[#state.sleepers + 1] = { task.co, arg }
  elseif kind == "task" then
    if arg.st == "done" or arg.st == "failed" then
      state.runnable[#state.runnable + 1] = { task.co, arg }
    else
      arg.waiters[#arg.waiters + 1] = task.co
      task.blocked_on = arg
    end
  end
end

local function traceback(msg)
  if type(msg) == "table" then return msg end -- a user error (freightliner.exitcode) stays one
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
    coroutine.yield(YIELD, "sleep", clock() + seconds)
  else
    sleep_ms(seconds * 1000)
  end
end

local next_task_id = 0

--- Start fn(...) as a task; it runs when fl.wait(), a task:wait() or
-- fl.parallel runs the scheduler. Returns the task handle:
--   task:wait()   -> fn's results | nil, message, "ERROR" when fn raised
--                    (from the top level it runs the scheduler until the
--                    task ends; from another task it suspends only that
--                    task)
--   task:status() -> "ready" | "done" | "failed"
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("fl.spawn: expected a function", 2) end
  local args = table.pack(...)
  next_task_id = next_task_id + 1
  local task = setmetatable({ id = next_task_id, st = "ready", waiters = {} }, Task)
  task.co = coroutine.create(function()
    local r = table.pack(xpcall(fn, traceback, table.unpack(args, 1, args.n)))
    if r[1] then
      task.results = table.pack(table.unpack(r, 2, r.n))
    else
      task.error = r[2]
    end
  end)
  state.tasks[task.co] = task
  state.ntasks = state.ntasks + 1
  state.runnable[#state.runnable + 1] = { task.co }
  return task
end

-- Tasks that can never run again: blocked on a task that is (directly or
-- through others) blocked on them. Raises naming them, after dropping
-- them so the scheduler stays usable.
local function blocked_forever()
  local names = {}
  for co, task in pairs(state.tasks) do
    local on = task.blocked_on
    names[#names + 1] = string.format("task %d waits for %s", task.id,
      type(on) == "table" and ("task " .. on.id) or tostring(on or "nothing"))
    state.tasks[co] = nil
    task.st, task.error = "failed", "blocked forever"
  end
  state.ntasks = 0
  table.sort(names)
  error(string.format("fl.wait: %d task%s blocked forever (a cycle of task:wait() calls): %s", #names,
    #names == 1 and " is" or "s are", table.concat(names, "; ")), 3)
end

-- Run the scheduler until done() is true or no task is left.
local function run_until(done)
  while state.ntasks > 0 and not done() do
    if #state.runnable > 0 then
      local batch = state.runnable
      state.runnable = {}
      for _, item in ipairs(batch) do
        local task = state.tasks[item[1]]
        if task then resume(task, item[2]) end
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
      blocked_forever()
    end
  end
end

-- task:wait's results from an ended task.
local function outcome(task)
  task.observed = true
  if task.error then return nil, tostring(task.error), "ERROR" end
  return table.unpack(task.results, 1, task.results.n)
end

function Task:wait()
  if self.st == "done" or self.st == "failed" then return outcome(self) end
  local co = coroutine.running()
  if in_task() then
    if co == self.co then error("task:wait(): a task cannot wait for itself", 2) end
    coroutine.yield(YIELD, "task", self)
    return outcome(self)
  end
  self.observed = true
  run_until(function() return self.st ~= "ready" end)
  return outcome(self)
end

function Task:status()
  return self.st
end

--- Run every spawned task to its end. An error in a task that no
-- task:wait() collects is raised here once the other tasks have been run
-- to their end; tasks blocked forever (waiting for each other) raise too.
function M.wait()
  if in_task() then error("fl.wait() cannot be called from inside a task", 2) end
  run_until(function() return false end)
  local errors = state.errors
  state.errors = {}
  for _, task in ipairs(errors) do
    if not task.observed then error(task.error, 0) end
  end
end

--- Run fn(item, index) for every item, at most `concurrency` at a time, and
-- return the list of results (first return value of each call).
function M.parallel(items, fn, opts)
  -- checked before any worker is spawned: nothing is left half-started
  if in_task() then error("fl.parallel() cannot be nested inside a task", 2) end
  check_keys("fl.parallel", opts, { concurrency = true }, 2)
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
  M.wait()
  return results
end

--- Engine counters: bytes_transferred, blobs_copied/skipped/mounted,
-- manifests_pushed, images_replicated/up_to_date/failed, retries.
function M.counters()
  local c = M.engine():counters()
  for name, n in pairs(state.counted) do
    if math.type(c[name]) == "integer" then c[name] = c[name] + n end
  end
  return c
end

--- fl.cancel(task): cancel one task (from fl.spawn): the copy it waits for
-- stops, and every copy it submits later returns CANCELLED. Returns false
-- when the task has ended already. fl.cancel(): cancel the engine (every
-- job, for good; after SIGINT/SIGTERM).
function M.cancel(task)
  if task == nil then
    if state.engine then state.engine:cancel() end
    return true
  end
  local co = getmetatable(task) == Task and task.co or task
  if type(co) ~= "thread" then
    error("fl.cancel: expected a task from fl.spawn (or nothing, to cancel everything)", 2)
  end
  if not state.tasks[co] then return false end -- it has ended
  state.cancelled[co] = true
  local id = state.task_job[co]
  if id and state.engine then state.engine:cancel(id) end
  return true
end

--- task:cancel(): see fl.cancel(task).
function Task:cancel()
  return M.cancel(self)
end

--- After an interrupted REPL statement: cancel the jobs it left running
-- and forget its tasks, so the next statement starts clean.
function M.abandon()
  if state.engine then
    state.engine:cancel_jobs()
    for _, p in ipairs(state.engine:progress()) do state.abandoned[p.id] = true end
  end
  state.tasks, state.ntasks, state.waiting, state.runnable, state.sleepers = {}, 0, {}, {}, {}
  state.task_job, state.finished, state.errors = {}, {}, {}
end

--- Shut the engine down (joins its threads). Idempotent.
function M.shutdown()
  if state.engine then
    state.engine:close()
    state.engine = nil
  end
end

return M
