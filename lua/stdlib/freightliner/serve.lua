--- freightliner.serve: the policy half of `freightliner serve`.
--
-- The HTTP listener runs in C (core.serve, src/serve/): its threads answer
-- requests from the job table, the sync list and the metrics this module
-- publishes, and hand job creation, cancellation and reloads to this, the
-- Lua thread, through a bounded queue. This module owns everything else:
-- the config and the API keys (reloaded on SIGHUP or POST /api/v1/reload),
-- the schedules, the jobs (one at a time, each a runner plan run by
-- replicate.run with a checkpoint in the state directory), the job
-- documents the API shows, the state file that lets unfinished jobs resume
-- after a restart, and the shutdown on SIGTERM/SIGINT (the running job is
-- cancelled at a blob boundary, its checkpoint kept; exit 0).
--
--   serve.run(o) -> exit status. o: config, listen, metrics_listen,
--     state_dir, api_key_file, tls_cert, tls_key, cors (list), timeout,
--     max_connections, max_body, max_queued, max_kept, audit_log, parallel,
--     webhooks (URLs), webhook_secret_file, probe_interval (s, 0: off),
--     hook (a Lua file returning { job = function(request, info) }: veto
--     with `return false, reason`, adjust by returning a new request)
local core = require("freightliner.core")
local checkpoint = require("freightliner.checkpoint")
local config = require("freightliner.config")
local copy = require("freightliner.copy")
local json = require("freightliner.json")
local log = require("freightliner.log")
local replicate = require("freightliner.replicate")
local runner = require("freightliner.runner")
local schedule = require("freightliner.schedule")

local M = {}

M.MIN_KEY_LENGTH = 16
M.MAX_FAILURES_LISTED = 100
M.PROGRESS_EVERY = 1 -- seconds between progress updates of a running job

local COUNTERS = {
  images_replicated = "freightliner_images_replicated_total",
  images_up_to_date = "freightliner_images_up_to_date_total",
  images_failed = "freightliner_images_failed_total",
  bytes_transferred = "freightliner_bytes_total",
  blobs_copied = "freightliner_blobs_copied_total",
  blobs_skipped = "freightliner_blobs_skipped_total",
  blobs_mounted = "freightliner_blobs_mounted_total",
  retries = "freightliner_retries_total",
}

local UNFINISHED = { queued = true, running = true, cancelling = true, interrupted = true }

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t or core.fs.time()))
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- ---- configuration and keys ------------------------------------------------

--- The API keys from the key file (one per line; blank lines and # comments
-- ignored) and FREIGHTLINER_API_KEYS (comma-separated) | nil, message.
function M.read_keys(key_file, env)
  local keys = {}
  if key_file then
    local f, err = io.open(key_file, "rb")
    if not f then return nil, string.format("cannot read the API key file: %s", err) end
    for line in f:lines() do
      line = trim(line)
      if line ~= "" and not line:match("^#") then keys[#keys + 1] = line end
    end
    f:close()
  end
  for k in (env or ""):gmatch("[^,]+") do
    k = trim(k)
    if k ~= "" then keys[#keys + 1] = k end
  end
  for i, k in ipairs(keys) do
    if #k < M.MIN_KEY_LENGTH or k:find("[%c%s]") then
      return nil, string.format("API key %d is too short or has spaces or control characters "
        .. "(keys need at least %d printable characters)", i, M.MIN_KEY_LENGTH)
    end
  end
  return keys
end

--- Load and check the sync file for serving: every entry gets a unique name
-- (its `name:` or sync-N). Returns { plan, byname, path } | nil, message.
function M.load_config(path)
  local plan, problems = config.load(path)
  if not plan then
    local lines = {}
    for _, p in ipairs(problems) do lines[#lines + 1] = config.format_problem(path, p) end
    return nil, table.concat(lines, "\n")
  end
  local byname = {}
  for i, e in ipairs(plan.entries) do
    e.name = e.name or ("sync-" .. i)
    if byname[e.name] then
      return nil, string.format("%s: sync[%d].name: '%s' names another entry too", path, i, e.name)
    end
    if e.interval and e.schedule then
      return nil, string.format("%s: sync[%d]: give interval or schedule, not both", path, i)
    end
    byname[e.name] = e
  end
  return { plan = plan, byname = byname, path = path }
end

-- An ad-hoc job's request checked by the sync file's schema, with the
-- registries of the current config: job | nil, message, problems.
local function adhoc_job(cfg, request, overrides)
  local f = io.open(cfg.path, "rb")
  local text = f and f:read("a")
  if f then f:close() end
  local doc = text and core.yaml.load(text, cfg.path)
  if type(doc) ~= "table" then return nil, "the config file cannot be read any more" end
  local raw = { version = 1, registries = doc.registries, defaults = doc.defaults, sync = { request } }
  local ok, encoded = pcall(json.encode, raw)
  if not ok then return nil, "the request cannot be checked against the config" end
  local plan, problems = config.parse(encoded, "request", { base_dir = cfg.path:match("^(.*)/[^/]*$") or "." })
  if not plan then
    local messages = {}
    for _, p in ipairs(problems) do messages[#messages + 1] = (p.message:gsub("^sync%[1%]%.?", "")) end
    return nil, "the job request is invalid: " .. table.concat(messages, "; "), messages
  end
  return config.job(plan, overrides)
end

-- ---- the server --------------------------------------------------------------

local Server = {}
Server.__index = Server

function Server:publish(doc)
  self.srv:update(doc.id, json.encode(doc))
end

-- The state file: every job document, oldest first (atomic write).
function Server:persist()
  local finished = 0
  for _, id in ipairs(self.order) do
    if not UNFINISHED[self.docs[id].state] then finished = finished + 1 end
  end
  local kept = {}
  for _, id in ipairs(self.order) do
    local d = self.docs[id]
    if finished > self.max_kept and not UNFINISHED[d.state] then
      finished = finished - 1
      self.docs[id] = nil
      self.srv:remove(id)
    else
      kept[#kept + 1] = id
    end
  end
  self.order = kept
  local list = {}
  for i, id in ipairs(self.order) do list[i] = self.docs[id] end
  local ok, err = core.fs.atomic_write(self.state_file,
    json.encode({ format = "freightliner-serve-state", version = 1, jobs = list }) .. "\n")
  if not ok then
    log.error("serve: cannot write the state file %s: %s", self.state_file, err)
    self.srv:ready(false, "the state directory is not writable")
  elseif not self.ready then
    self.ready = true
    self.srv:ready(true, "")
  end
end

function Server:audit(event, fields)
  self.srv:audit(event, json.encode(fields or {}))
end

-- The registries /readyz checks: every host the config names (not OCI
-- layouts).
function Server:publish_probes()
  local hosts, seen = {}, {}
  for _, r in pairs(self.cfg.plan.registries or {}) do
    if r.host and not seen[r.host] and not r.host:match("^oci:") then
      seen[r.host] = true
      hosts[#hosts + 1] = r.host
    end
  end
  for _, e in ipairs(self.cfg.plan.entries) do
    for _, h in ipairs({ e.source, e.destination }) do
      if h and not seen[h] and not h:match("^oci:") then
        seen[h] = true
        hosts[#hosts + 1] = h
      end
    end
  end
  table.sort(hosts)
  self.srv:probes(hosts)
end

function Server:publish_syncs()
  local list = setmetatable({}, { __jsontype = "array" })
  for i, e in ipairs(self.cfg.plan.entries) do
    local s = self.sched[e.name]
    list[i] = { name = e.name, source = e.source, destination = e.destination,
      interval = e.interval, schedule = e.schedule,
      next_run = s and s.next_at and iso(s.next_at) or nil, last_job = s and s.last_job or nil }
  end
  self.srv:syncs(#list > 0 and json.encode(list) or "[]")
end

-- Schedules for the current config; entries that keep their name and
-- timing keep their next run.
function Server:plan_schedules()
  local now = core.fs.time()
  local old = self.sched or {}
  self.sched = {}
  for _, e in ipairs(self.cfg.plan.entries) do
    if e.interval or e.schedule then
      local o = old[e.name]
      if o and o.interval == e.interval and o.schedule == e.schedule then
        self.sched[e.name] = o
      else
        -- the first run after start (or a new schedule) copies what is missing
        self.sched[e.name] = { interval = e.interval, schedule = e.schedule,
          next_at = now + math.random() * math.min(1, schedule.MAX_JITTER) }
      end
    end
  end
end

function Server:tick_schedules()
  local now = core.fs.time()
  for name, s in pairs(self.sched) do
    if s.next_at and s.next_at <= now then
      s.next_at = schedule.next_run(self.cfg.byname[name], now)
      local active = s.active and self.docs[s.active]
      if s.active and (not active or UNFINISHED[active.state]) then
        self.srv:add("freightliner_runs_skipped_overlap_total", { sync = name }, 1)
        log.warn("serve: %s: run skipped, the previous one (%s) is still going", name, s.active)
      else
        local id, msg = self.srv:create(json.encode({ sync = name }), "schedule")
        if id then
          s.active, s.last_job = id, id
        else
          log.warn("serve: %s: scheduled run not queued: %s", name, msg)
        end
      end
    end
  end
end

function Server:next_due_ms()
  local now, ms = core.fs.time(), 200
  for _, s in pairs(self.sched) do
    if s.next_at then ms = math.min(ms, math.max(0, math.ceil((s.next_at - now) * 1000))) end
  end
  return ms
end

function Server:reload(how, request_id, client)
  local cfg, err = M.load_config(self.opts.config)
  local keys, kerr, hook
  if cfg then keys, kerr = M.read_keys(self.opts.api_key_file, os.getenv("FREIGHTLINER_API_KEYS")) end
  local secret
  if keys then
    secret, kerr = M.read_secret(self.opts.webhook_secret_file, os.getenv("FREIGHTLINER_WEBHOOK_SECRET"))
    if kerr then keys = nil end
  end
  if keys and self.opts.hook then
    hook, kerr = M.load_hook(self.opts.hook)
    if not hook then keys = nil end
  end
  local outcome = (cfg and keys) and "success" or "failure"
  self.srv:add("freightliner_config_reloads_total", { outcome = outcome }, 1)
  self:audit("reload", { how = how, outcome = outcome, request_id = request_id, client = client,
    message = (not cfg and "the config has problems")
      or (not keys and "the API keys, the webhook secret or the hook have problems") or nil })
  if not cfg or not keys then
    log.error("serve: reload failed, keeping the running config: %s", err or kerr)
    return false
  end
  self.cfg = cfg
  self.hook = hook
  self.webhook_secret = secret
  self.srv:keys(keys)
  self:plan_schedules()
  self:publish_syncs()
  self:publish_probes()
  log.info("serve: reloaded %s (%d sync entries, %d API keys)", self.opts.config, #cfg.plan.entries, #keys)
  return true
end

-- A message from the HTTP threads (during a run too: no job starts here).
function Server:handle(msg)
  if msg.kind == "run" then
    local text = self.srv:job(msg.id)
    if not text then return end
    local doc = json.decode(text)
    if not doc then return end
    doc.sync = doc.request and doc.request.sync or nil
    self.docs[msg.id] = doc
    self.order[#self.order + 1] = msg.id
    self.queue[#self.queue + 1] = msg.id
    if doc.sync and self.sched[doc.sync] and doc.trigger ~= "schedule" then
      self.sched[doc.sync].active = msg.id -- a manual run counts as the entry's run
    end
    self:persist()
  elseif msg.kind == "cancel" then
    local doc = self.docs[msg.id]
    if not doc or not UNFINISHED[doc.state] then return end
    if self.running and self.running.id == msg.id then
      self.running.cancel = true
      copy.engine():cancel_jobs()
      doc.state = "cancelling"
      self:publish(doc)
    else
      for i, id in ipairs(self.queue) do
        if id == msg.id then table.remove(self.queue, i) break end
      end
      doc.state, doc.finished = "cancelled", iso()
      self:publish(doc)
      self:persist()
    end
    log.info("serve: job %s: cancelled (request %s from %s)", msg.id, msg.request_id, msg.client)
  elseif msg.kind == "reload" then
    self:reload("api", msg.request_id, msg.client)
  end
end

-- Between images and while the engine waits: messages, SIGHUP, schedules,
-- the running job's progress. True when the running job must stop.
function Server:poll()
  while true do
    local msg = self.srv:next(0)
    if not msg then break end
    self:handle(msg)
  end
  if core.serve.hangup() then self:reload("signal") end
  self:tick_schedules()
  local r = self.running
  if r and core.now() - r.progress_at >= M.PROGRESS_EVERY then
    r.progress_at = core.now()
    local c = copy.counters()
    local doc = self.docs[r.id]
    doc.progress = {
      bytes_transferred = c.bytes_transferred - r.base.bytes_transferred,
      images_replicated = c.images_replicated - r.base.images_replicated,
      images_up_to_date = c.images_up_to_date - r.base.images_up_to_date,
      images_failed = c.images_failed - r.base.images_failed,
    }
    self:publish(doc)
  end
  return (r and r.cancel) or core.engine.signal() ~= nil
end

function Server:build_job(doc)
  local overrides = { progress = false, dry_run = false, parallel = self.opts.parallel }
  local req = doc.request or {}
  if req.sync then
    local e = self.cfg.byname[req.sync]
    if not e then return nil, string.format("no sync entry is named '%s' any more", req.sync) end
    local job = config.job(self.cfg.plan, overrides)
    job.entries = { e }
    job.parallel = job.parallel or self.cfg.plan.parallel
    return job
  end
  local job, msg, problems = adhoc_job(self.cfg, req, overrides)
  if job then job.parallel = job.parallel or self.cfg.plan.parallel end
  return job, msg, problems
end

function Server:finish(doc, state, summary)
  local label = { sync = doc.sync or "ad-hoc" }
  doc.state, doc.finished = state, iso()
  if summary then
    local counters = {}
    for field, metric in pairs(COUNTERS) do
      counters[field] = summary[field] or 0
      if counters[field] > 0 then self.srv:add(metric, label, counters[field]) end
    end
    counters.planned = summary.planned
    doc.counters = counters
    local failures, by_code = {}, {}
    for _, f in ipairs(summary.failures or {}) do
      local code = tostring(f.code or "UNKNOWN")
      by_code[code] = (by_code[code] or 0) + 1
    end
    for code, n in pairs(by_code) do
      self.srv:add("freightliner_image_failures_total", { sync = label.sync, code = code }, n)
    end
    for i, f in ipairs(summary.failures or {}) do
      if i > M.MAX_FAILURES_LISTED then break end
      failures[i] = { source = f.src, destination = f.dst, message = f.message, code = f.code }
    end
    for _, e in ipairs(summary.errors or {}) do
      if #failures >= M.MAX_FAILURES_LISTED then break end
      failures[#failures + 1] = { message = e.message, code = e.code }
    end
    doc.failures = #failures > 0 and failures or nil
    doc.duration_seconds = summary.duration_seconds
    self.srv:observe("freightliner_run_duration_seconds", label, summary.duration_seconds or 0)
  end
  doc.progress = nil
  self.srv:add("freightliner_runs_total", { sync = label.sync, outcome = state }, 1)
  if state == "succeeded" and doc.sync then
    self.srv:set("freightliner_last_success_timestamp_seconds", label, os.time())
  end
  self:publish(doc)
  self:persist()
  self:notify(doc)
  log.info("serve: job %s (%s): %s", doc.id, label.sync, state)
end

-- One webhook POST per finished run (not per image), to every --webhook.
function Server:notify(doc)
  if #(self.opts.webhooks or {}) == 0 then return end
  local body = json.encode({ event = "run", job = doc.id, sync = doc.sync, trigger = doc.trigger,
    state = doc.state, created = doc.created, started = doc.started, finished = doc.finished,
    duration_seconds = doc.duration_seconds, counters = doc.counters,
    failures = doc.failures and #doc.failures or 0, message = doc.message })
  for _, url in ipairs(self.opts.webhooks) do
    local ok, msg = self.srv:notify(url, body, self.webhook_secret)
    if not ok then log.warn("serve: webhook for job %s not queued: %s", doc.id, msg) end
  end
end

--- The webhook secret from a file (first line) or FREIGHTLINER_WEBHOOK_SECRET
-- | nil (unsigned) | nil, message.
function M.read_secret(path, env)
  if path then
    local f, err = io.open(path, "rb")
    if not f then return nil, string.format("cannot read the webhook secret file: %s", err) end
    local secret = trim(f:read("l") or "")
    f:close()
    if secret == "" then return nil, "the webhook secret file is empty" end
    return secret
  end
  if env and trim(env) ~= "" then return trim(env) end
  return nil
end

-- The server's job hook (--hook FILE): hook.job(request, info) may veto a
-- job (false, reason), adjust its request (a table) or let it be (nil or
-- true). An error in the hook fails that job only; the detail goes to the
-- log. Returns true to go on.
function Server:apply_hook(doc)
  local fn = self.hook and self.hook.job
  if not fn then return true end
  local ok, r, reason = pcall(fn, json.decode(json.encode(doc.request or {})),
    { id = doc.id, trigger = doc.trigger, sync = doc.sync })
  if not ok then
    log.error("serve: job %s: the job hook failed: %s", doc.id, tostring(r))
    doc.message = "the server's job hook failed (see the server log)"
    self:finish(doc, "failed")
    return false
  end
  if r == false or (r == nil and reason ~= nil) then
    doc.message = "refused by the server's job hook: " .. tostring(reason or "no reason given")
    self:finish(doc, "refused")
    return false
  end
  if type(r) == "table" then
    doc.request, doc.adjusted = r, true
    doc.sync = r.sync
  end
  return true
end

--- Load a job hook file: a Lua chunk returning { job = function(request, info) }.
function M.load_hook(path)
  if not path then return nil end
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  local ok, hook = pcall(chunk)
  if not ok or type(hook) ~= "table" or (hook.job ~= nil and type(hook.job) ~= "function") then
    return nil, string.format("hook %s must return a table { job = function(request, info) ... end }%s",
      path, ok and "" or (": " .. tostring(hook)))
  end
  return hook
end

function Server:run_job(id)
  local doc = self.docs[id]
  if not doc or doc.state ~= "queued" then return end
  if not self:apply_hook(doc) then return end
  local job, msg, problems = self:build_job(doc)
  if not job then
    doc.message, doc.problems = msg, problems
    return self:finish(doc, "invalid")
  end
  doc.state, doc.started = "running", iso()
  self:publish(doc)
  self:persist()
  local c = copy.counters()
  self.running = { id = id, cancel = false, progress_at = core.now(), base = c }
  local cp_path = self.dir .. "/checkpoints/" .. id .. ".json"
  local ok, err = pcall(function()
    local plan, pmsg = runner.plan(job)
    if not plan then error({ message = pmsg }, 0) end
    local cp
    if core.fs.exists(cp_path) then cp = checkpoint.load(cp_path) end
    if not cp then
      local cmsg
      cp, cmsg = checkpoint.create(cp_path, job, { force = true })
      if not cp then error({ message = cmsg }, 0) end
      for _, it in ipairs(plan.items) do cp:mark(it.key, "pending") end
      cp:flush()
    end
    local summary = replicate.run(plan, {
      parallel = job.parallel, checkpoint = cp, progress = false, copy = {},
      hooks = (plan.items[1] and plan.items[1].hooks) or {},
      stop = function() return self:poll() end,
    })
    local state = (self.running.cancel and "cancelled") or (summary.interrupted and "interrupted")
      or ((summary.images_failed > 0 or #summary.errors > 0) and "failed") or "succeeded"
    if state ~= "interrupted" then os.remove(cp_path) end
    self.running = nil
    self:finish(doc, state, summary)
  end)
  self.running = nil
  if not ok then
    -- a plan or policy error: the job fails, the server goes on; the
    -- detail goes to the log, the document gets the message only
    local message = type(err) == "table" and err.message or "internal error (see the server log)"
    if type(err) ~= "table" then log.error("serve: job %s: %s", id, tostring(err)) end
    doc.message = message
    self:finish(doc, core.engine.signal() and "interrupted" or "failed")
  end
end

-- Jobs of an earlier run of the server: unfinished ones are queued again
-- (their checkpoints skip what was done), finished ones stay listed.
function Server:restore()
  local f = io.open(self.state_file, "rb")
  if not f then return end
  local text = f:read("a")
  f:close()
  local state = json.decode(text)
  if type(state) ~= "table" or state.format ~= "freightliner-serve-state" then
    log.warn("serve: ignoring the unreadable state file %s", self.state_file)
    return
  end
  local resumed = 0
  for _, doc in ipairs(state.jobs or {}) do
    if type(doc) == "table" and type(doc.id) == "string" and not self.docs[doc.id] then
      if doc.state == "cancelling" then
        doc.state, doc.finished = "cancelled", doc.finished or iso()
      elseif UNFINISHED[doc.state] then
        doc.state, doc.resumed, doc.progress = "queued", true, nil
        self.queue[#self.queue + 1] = doc.id
        resumed = resumed + 1
      end
      self.docs[doc.id] = doc
      self.order[#self.order + 1] = doc.id
      self:publish(doc)
    end
  end
  if resumed > 0 then log.info("serve: %d unfinished job(s) resume", resumed) end
end

function Server:shutdown()
  -- the HTTP threads stop first: nothing new arrives
  while true do
    local msg = self.srv:next(0)
    if not msg then break end
    if msg.kind == "run" then self:handle(msg) end -- kept queued for the next start
  end
  self:persist()
  self.srv:close()
  copy.shutdown()
  log.info("serve: stopped")
end

--- Run the server until SIGTERM/SIGINT. Returns the exit status.
function M.run(o)
  local cfg, err = M.load_config(o.config)
  if not cfg then
    io.stderr:write(err, "\n")
    return 2
  end
  local keys, kerr = M.read_keys(o.api_key_file, os.getenv("FREIGHTLINER_API_KEYS"))
  if not keys then
    io.stderr:write("freightliner: ", kerr, "\n")
    return 2
  end
  for _, url in ipairs(o.webhooks or {}) do
    if not url:match("^https?://[^/]") then
      io.stderr:write(string.format("freightliner: --webhook '%s' must be an http:// or https:// URL\n", url))
      return 2
    end
  end
  local secret, serr0 = M.read_secret(o.webhook_secret_file, os.getenv("FREIGHTLINER_WEBHOOK_SECRET"))
  if serr0 then
    io.stderr:write("freightliner: ", serr0, "\n")
    return 2
  end
  local hook, herr = M.load_hook(o.hook)
  if o.hook and not hook then
    io.stderr:write("freightliner: ", herr, "\n")
    return 2
  end
  local function read_file(path, what)
    local f, ferr = io.open(path, "rb")
    if not f then return nil, string.format("cannot read the %s: %s", what, ferr) end
    local text = f:read("a")
    f:close()
    return text
  end
  local cert, key
  if o.tls_cert or o.tls_key then
    if not (o.tls_cert and o.tls_key) then
      io.stderr:write("freightliner: give both --tls-cert and --tls-key\n")
      return 2
    end
    cert, err = read_file(o.tls_cert, "TLS certificate")
    if cert then key, err = read_file(o.tls_key, "TLS key") end
    if not key then
      io.stderr:write("freightliner: ", err, "\n")
      return 2
    end
  end
  local dir = o.state_dir
  for _, d in ipairs({ dir, dir .. "/checkpoints" }) do
    local ok, merr = core.fs.mkdir_p(d)
    if not ok then
      io.stderr:write(string.format("freightliner: cannot create the state directory %s: %s\n", d, merr))
      return 2
    end
  end
  core.engine.trap_signals({ service = true })
  local srv, serr = core.serve.start({
    listen = o.listen, metrics_listen = o.metrics_listen, tls_cert = cert, tls_key = key,
    max_connections = o.max_connections, timeout = o.timeout, max_body = o.max_body,
    max_queued = o.max_queued, max_kept = o.max_kept, cors = o.cors,
    audit_log = o.audit_log or (dir .. "/audit.log"), version = core.version,
    probe_interval = o.probe_interval,
  })
  if not srv then
    io.stderr:write("freightliner: ", serr, "\n")
    return 2
  end
  srv:keys(keys)
  if #keys == 0 then
    log.warn("serve: no API keys (--api-key-file, FREIGHTLINER_API_KEYS): every /api/ request is refused")
  end
  local self = setmetatable({ srv = srv, opts = o, cfg = cfg, dir = dir, state_file = dir .. "/jobs.json",
    docs = {}, order = {}, queue = {}, max_kept = o.max_kept or 200, ready = false, hook = hook,
    webhook_secret = secret }, Server)
  copy.configure({ progress = function() self:poll() end })
  self:restore()
  self:plan_schedules()
  self:publish_syncs()
  self:publish_probes()
  self:persist()
  local scheme = cert and "https" or "http"
  local host = o.listen:match("^(.*):[^:]*$")
  io.stdout:write(string.format("freightliner serve: listening on %s://%s:%d%s\n", scheme, host, srv:port(),
    o.metrics_listen and string.format("; metrics on port %d", srv:port(true)) or ""))
  io.stdout:flush()
  log.info("serve: %d sync entries, %d API keys, state in %s", #cfg.plan.entries, #keys, dir)

  local function step()
    if core.serve.hangup() then self:reload("signal") end
    self:tick_schedules()
    if #self.queue > 0 then
      self:run_job(table.remove(self.queue, 1))
      self:publish_syncs()
    else
      local msg = srv:next(self:next_due_ms())
      if msg then self:handle(msg) end
    end
  end
  while not core.engine.signal() do
    -- an error here (a bug, out of memory) is logged; the server goes on
    local ok, serr2 = xpcall(step, debug.traceback)
    if not ok then
      log.error("serve: %s", tostring(serr2))
      core.sleep(0.2)
    end
  end
  log.info("serve: signal %d: shutting down", core.engine.signal())
  self:shutdown()
  return 0
end

return M
