--- freightliner.report: what a replication run tells its user and its
-- monitoring: one log line per image, the summary, the dry-run plan and the
-- metrics file.
--
--   local rec = report.recorder(plan, job)  -- wraps each item's hooks to
--                                            -- log and count every image
--   report.finish(rec, summary) -> exit status   (prints and writes it all)
--
-- Where things go: stdout only for what was asked for (the dry-run plan,
-- text or --format json); everything else goes to stderr through the
-- logger, so with --log-format json every line is JSON with the run id and,
-- where there is one, the image. Text lines escape control characters in
-- names that came from a registry (freightliner.printable).

local log = require("freightliner.log")
local canonical = require("freightliner.canonical")
local exitcode = require("freightliner.exitcode")
local printable = require("freightliner.printable")
local progress = require("freightliner.progress")

local M = {}

local esc = printable.escape

--- "1 image", "2 images".
function M.plural(n, word, words)
  return string.format("%d %s", n, n == 1 and word or (words or word .. "s"))
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

-- The key of an item's destination repository: "host/repo" or "oci:PATH".
local function destination_key(item)
  local dst = item.dst or ""
  if dst:match("^oci:") then return (dst:gsub(":[^:/]*$", "")) end
  local base = dst:gsub("@.*$", "")
  return (base:gsub(":[^:/]*$", ""))
end

local function new_counts()
  return { bytes_transferred = 0, images_replicated = 0, images_up_to_date = 0, images_failed = 0,
           blobs_copied = 0, blobs_skipped = 0, blobs_mounted = 0 }
end

--- A recorder for the run of `plan`: each item's hooks are wrapped so that
-- every image done or failed is logged (info / error) and counted per
-- destination; `explain(item, message, code)` may improve a failure message.
function M.recorder(plan, job, explain)
  local rec = { plan = plan, job = job, failed = {}, destinations = {}, started = os.time() }
  for _, item in ipairs(plan.items) do
    local hooks = item.hooks or {}
    local key = destination_key(item)
    local wrapped = setmetatable({}, { __index = hooks })
    wrapped.on_done = function(r, ...)
      local d = rec.destinations[key] or new_counts()
      rec.destinations[key] = d
      local field = r.up_to_date and "images_up_to_date" or "images_replicated"
      d[field] = d[field] + 1
      d.bytes_transferred = d.bytes_transferred + (r.bytes or 0)
      d.blobs_copied = d.blobs_copied + (r.blobs_copied or 0)
      d.blobs_skipped = d.blobs_skipped + (r.blobs_skipped or 0)
      d.blobs_mounted = d.blobs_mounted + (r.blobs_mounted or 0)
      log.log("info", r.up_to_date and ("up to date at " .. item.dst)
        or string.format("copied to %s (%s in %s)", item.dst, progress.human(r.bytes or 0),
          M.plural(r.blobs_copied or 0, "blob")),
        item.src, { destination = item.dst, digest = r.digest, bytes = r.bytes or 0,
                    result = r.up_to_date and "up to date" or "copied" })
      if hooks.on_done then return hooks.on_done(r, ...) end
    end
    wrapped.on_error = function(f, ...)
      local msg, code = f.message, f.code
      if explain then msg = explain(item, msg, code) end
      f.message = msg
      local d = rec.destinations[key] or new_counts()
      rec.destinations[key] = d
      d.images_failed = d.images_failed + 1
      rec.failed[#rec.failed + 1] = { image = item.src, destination = item.dst, message = msg, code = code }
      log.log("error", string.format("failed: %s (%s)", msg, code or "ERROR"), item.src,
        { destination = item.dst, code = code or "ERROR", result = "failed" })
      if hooks.on_error then return hooks.on_error(f, ...) end
    end
    item.hooks = wrapped
  end
  return rec
end

-- The dry run's actions with every error counted.
local function dry_totals(summary, plan)
  local t = { copy = 0, up_to_date = 0, errors = #(summary.errors or {}), skipped = #plan.skipped }
  for _, a in ipairs(summary.actions or {}) do
    if a.action == "copy" then t.copy = t.copy + 1
    elseif a.action == "up to date" then t.up_to_date = t.up_to_date + 1
    elseif a.action == "error" then t.errors = t.errors + 1 end
  end
  return t
end

local function dry_run_output(summary, plan, format)
  local totals = dry_totals(summary, plan)
  table.sort(summary.actions, function(a, b) return a.src < b.src end)
  if format == "json" then
    local actions = {}
    for _, a in ipairs(summary.actions) do actions[#actions + 1] = a end
    for _, a in ipairs(summary.prune or {}) do actions[#actions + 1] = a end
    for _, s in ipairs(plan.skipped) do
      actions[#actions + 1] = { src = s.src, action = "skip", rule = s.rule, reason = s.reason }
    end
    for _, e in ipairs(summary.errors or {}) do
      actions[#actions + 1] = { src = e.repository, action = "error", reason = e.message, code = e.code }
    end
    -- per entry: candidates, selected, and each dropped tag with its rule
    local explain = {}
    for i, e in ipairs(plan.explain or {}) do
      explain[i] = { label = e.label, repositories = e.repositories, candidates = e.candidates,
                     selected = e.selected, rules = canonical.array(e.rules or {}),
                     dropped = canonical.array(e.dropped or {}) }
    end
    io.stdout:write(assert(canonical.encode({ run_id = log.run_id(), actions = canonical.array(actions),
      explain = canonical.array(explain), warnings = canonical.array(plan.warnings or {}),
      totals = totals })), "\n")
  else
    require("freightliner.replicate").print_explain(plan.explain or {}, io.stdout)
    for _, a in ipairs(summary.actions) do
      io.stdout:write(string.format("%-10s %s -> %s (%s)\n", a.action, esc(a.src), esc(a.dst), esc(a.reason)))
    end
    for _, a in ipairs(summary.prune or {}) do
      io.stdout:write(string.format("%-10s %s (%s)\n", a.action, esc(a.dst), esc(a.reason)))
    end
    for _, s in ipairs(plan.skipped) do
      io.stdout:write(string.format("%-10s %s (%s%s)\n", "skip", esc(s.src), s.rule and (esc(s.rule) .. ": ") or "",
        esc(s.reason)))
    end
    for _, e in ipairs(summary.errors or {}) do
      io.stdout:write(string.format("%-10s %s (%s)\n", "error", esc(e.message), esc(e.code or "ERROR")))
    end
    io.stdout:write(string.format("dry run: %d to copy, %d up to date, %d skipped by filter, %s; nothing was written\n",
      totals.copy, totals.up_to_date, totals.skipped, M.plural(totals.errors, "error")))
  end
  return totals
end

-- The run's summary: text on stderr, or one JSON log line.
local function summary_output(summary, rec, status)
  local job = rec.job
  local tail = ""
  if summary.interrupted then
    tail = job.checkpoint_file
      and string.format("; interrupted: finish with 'freightliner resume --checkpoint-file %s'", job.checkpoint_file)
      or "; interrupted: no --checkpoint-file, so run the same command again "
        .. "(images already copied are then up to date)"
  end
  local line = string.format("%s replicated, %d up to date, %d failed; %s in %s (%d skipped, %d mounted) in %.1f s%s",
    M.plural(summary.images_replicated, "image"), summary.images_up_to_date, summary.images_failed,
    progress.human(summary.bytes_transferred), M.plural(summary.blobs_copied, "blob"), summary.blobs_skipped,
    summary.blobs_mounted, summary.duration_seconds, tail)
  if (summary.tags_deleted or 0) > 0 then
    line = line .. string.format("; %s deleted (prune)", M.plural(summary.tags_deleted, "tag"))
  end
  if log.json() then
    for _, e in ipairs(summary.errors or {}) do
      log.log("error", e.message, nil, { code = e.code or "ERROR", repository = e.repository })
    end
    log.log(status == 0 and "info" or "error", line, nil, {
      summary = true, status = status, images_planned = #rec.plan.items,
      images_replicated = summary.images_replicated, images_up_to_date = summary.images_up_to_date,
      images_failed = summary.images_failed, images_skipped_by_filter = #rec.plan.skipped,
      errors = #(summary.errors or {}), bytes_transferred = summary.bytes_transferred,
      tags_deleted = summary.tags_deleted or 0,
      interrupted = summary.interrupted or false })
    return
  end
  for _, f in ipairs(rec.failed) do
    io.stderr:write(string.format("failed: %s -> %s: %s (%s)\n", esc(f.image), esc(f.destination), esc(f.message),
      esc(f.code or "ERROR")))
  end
  for _, e in ipairs(summary.errors or {}) do
    io.stderr:write(string.format("failed: %s (%s)\n", esc(e.message), esc(e.code or "ERROR")))
  end
  io.stderr:write(line, "\n")
end

-- The metrics document of the run (merged with the interrupted part's on resume).
local function metrics_output(summary, rec, status)
  local metrics = require("freightliner.metrics")
  local job, plan = rec.job, rec.plan
  local failed = {}
  for _, f in ipairs(rec.failed) do failed[#failed + 1] = f end
  for _, e in ipairs(summary.errors or {}) do
    failed[#failed + 1] = { image = e.repository, message = e.message, code = e.code }
  end
  local doc = {
    run_id = log.run_id(), started_at = iso(rec.started), finished_at = iso(os.time()),
    duration_seconds = summary.duration_seconds, interrupted = summary.interrupted, dry_run = job.dry_run,
    images_planned = #plan.items, images_replicated = summary.images_replicated,
    images_up_to_date = summary.images_up_to_date, images_failed = summary.images_failed + #(summary.errors or {}),
    images_skipped_by_filter = #plan.skipped, bytes_transferred = summary.bytes_transferred,
    blobs_copied = summary.blobs_copied, blobs_skipped = summary.blobs_skipped,
    blobs_mounted = summary.blobs_mounted, retries = summary.retries, tags_deleted = summary.tags_deleted,
    source_manifest_gets = summary.source_manifest_gets,
    failed_images = failed, destinations = rec.destinations, status = status,
  }
  if job.resumed then
    local old = metrics.read(job.metrics_file)
    if old and old.run_id == doc.run_id then doc = metrics.merge(old, doc) end
  end
  local ok, err = metrics.write(job.metrics_file, doc)
  if not ok then log.log("error", string.format("writing metrics %s: %s", job.metrics_file, err)) end
end

-- Failures the run recorded that the on_error wrapper did not see: an
-- image whose copy succeeded but whose on_done hook raised is failed by
-- replicate.run (code POLICY) without an on_error call.
local function reconcile(rec, summary)
  local seen = {}
  for _, f in ipairs(rec.failed) do seen[f.image .. " -> " .. (f.destination or "")] = true end
  for _, f in ipairs(summary.failures or {}) do
    if not seen[f.src .. " -> " .. (f.dst or "")] then
      rec.failed[#rec.failed + 1] = { image = f.src, destination = f.dst, message = f.message, code = f.code }
      local d = rec.destinations[destination_key({ dst = f.dst })]
      if d and d.images_replicated > 0 then
        d.images_replicated = d.images_replicated - 1
        d.images_failed = d.images_failed + 1
      end
      log.log("error", string.format("failed: %s (%s)", f.message, f.code or "ERROR"), f.src,
        { destination = f.dst, code = f.code or "ERROR", result = "failed" })
    end
  end
end

--- Print and write everything about a finished run; returns its exit status.
function M.finish(rec, summary)
  reconcile(rec, summary)
  local job = rec.job
  local status = summary.status
  if job.dry_run then
    local totals = dry_run_output(summary, rec.plan, job.format)
    if status == exitcode.OK and totals.errors > 0 then status = exitcode.FAILED end
  else
    summary_output(summary, rec, status)
  end
  if job.metrics_file then metrics_output(summary, rec, status) end
  return status
end

return M
