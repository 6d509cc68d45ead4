--- freightliner.runner: the glue between the replication commands and the
-- library: options -> plan -> run -> checkpoint, metrics, summary, status.
--
-- replicate, replicate-tree, resume and sync all end up in M.execute with a
-- "job" table: { source, destination, registries (host -> options),
-- entries = { { repositories | pattern | regex, tags (filter rules),
-- dest_prefix | dest_template, platforms, referrers, policy } },
-- parallel, dry_run, format, checkpoint_file, metrics_file, progress }.
-- The job is also what a checkpoint records as its plan, so `resume` can
-- rebuild the same run from the checkpoint alone.

local core = require("freightliner.core")
local copy = require("freightliner.copy")
local registry = require("freightliner.registry")
local replicate = require("freightliner.replicate")
local json = require("freightliner.json")

local M = {}

local function stderr(fmt, ...)
  io.stderr:write("freightliner: ", string.format(fmt, ...), "\n")
end

function M.usage_error(msg, command)
  stderr("%s; see 'freightliner help %s'", msg, command)
  return 2
end

-- Optional modules of the policy layer, loaded on first use.
local function lib(name)
  return require("freightliner." .. name)
end

--- A tag selector from filter rules (freightliner.filters, the one
-- implementation); returns fn(repo, tags) -> kept, skipped | nil, message.
function M.tag_selector(rules, opts)
  local sel, err = lib("filters").tag_selector(rules or {}, opts)
  if not sel then return nil, err end
  return sel
end

-- Registry options for every host the job names (TLS, credentials).
local function configure_registries(job)
  for host, opts in pairs(job.registries or {}) do
    copy.registry_options(host, opts)
  end
end

local function load_policy(path)
  if not path then return {} end
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  local ok, hooks = pcall(chunk)
  if not ok then return nil, string.format("policy %s failed: %s", path, hooks) end
  if type(hooks) ~= "table" then
    return nil, string.format("policy %s must return a table of hooks (filter, rename, retry, on_done, on_error)", path)
  end
  local known = { "filter", "on_done", "on_error", "rename", "retry" }
  for k, v in pairs(hooks) do
    local is_hook = false
    for _, name in ipairs(known) do is_hook = is_hook or k == name end
    if not is_hook then
      local hint = lib("schema").closest(tostring(k), known)
      return nil, string.format("policy %s: unknown hook '%s'%s (hooks: %s)", path, tostring(k),
        hint and ("; did you mean '" .. hint .. "'?") or "", table.concat(known, ", "))
    end
    if type(v) ~= "function" then
      return nil, string.format("policy %s: hook '%s' must be a function, not a %s", path, k, type(v))
    end
  end
  return hooks
end

-- "sync[2] (line 14)" for a sync entry, "replicate" for the CLI's one.
local function entry_label(job, i, entry)
  if job.config then
    return string.format("%s: sync[%d]%s", job.config, i, entry.line and (" (line " .. entry.line .. ")") or "")
  end
  return #job.entries > 1 and string.format("entry %d", i) or "selection"
end

--- Build the plan of every entry of the job, through replicate.plan (the
-- one selection pipeline). plan.explain lists each entry's selection;
-- plan.warnings its rules that selected nothing.
function M.plan(job)
  configure_registries(job)
  local all = { items = {}, skipped = {}, errors = {}, warnings = {}, explain = {}, entries = {} }
  for i, entry in ipairs(job.entries) do
    local hooks, err = load_policy(entry.policy)
    if not hooks then return nil, err, "INVALID" end
    local source = entry.source or job.source
    local plan, msg, code = replicate.plan{
      source = source, destination = entry.destination or job.destination,
      source_options = (job.registries or {})[source],
      repositories = entry.repositories, pattern = entry.pattern, regex = entry.regex,
      exclude_repositories = entry.exclude_repositories,
      tags = entry.tags or {}, dest_prefix = entry.dest_prefix, dest_template = entry.dest_template,
      rename_prefix = entry.rename_prefix,
      hooks = { filter = hooks.filter, rename = hooks.rename }, parallel = job.parallel,
      label = entry_label(job, i, entry),
    }
    if not plan then return nil, msg, code end
    for _, it in ipairs(plan.items) do
      it.copy = { platforms = entry.platforms, referrers = entry.referrers, force = job.force }
      it.hooks = hooks
      it.entry = i
      all.items[#all.items + 1] = it
    end
    for _, s in ipairs(plan.skipped) do all.skipped[#all.skipped + 1] = s end
    for _, e in ipairs(plan.errors) do all.errors[#all.errors + 1] = e end
    for _, w in ipairs(plan.warnings) do all.warnings[#all.warnings + 1] = w end
    all.explain[#all.explain + 1] = plan.explain
    all.entries[i] = { plan = plan, prune = entry.prune or job.prune, prune_max = entry.prune_max }
  end
  return all
end

-- Prune every entry that asks for it (after the copies). Deletions and
-- refusals are printed and counted in summary.tags_deleted; a refused or
-- failed prune makes the status 1. The dry run only lists what would go.
local function prune_entries(job, plan, summary)
  local prune = lib("prune")
  summary.tags_deleted = 0
  summary.prune = {}
  -- every destination tag any entry of the run wants, per destination
  local wanted = {}
  for _, e in ipairs(plan.entries) do
    local w = wanted[e.plan.destination] or {}
    wanted[e.plan.destination] = w
    for repo, tags in pairs(e.plan.wanted) do
      w[repo] = w[repo] or {}
      for t in pairs(tags) do w[repo][t] = true end
    end
  end
  for _, e in ipairs(plan.entries) do
    if e.prune then
      local label = e.plan.explain.label
      if #e.plan.errors > 0 then
        summary.errors[#summary.errors + 1] = { code = "PRUNE_SKIPPED", message = string.format(
          "%s: not pruned: its plan had %d error%s (a tag that could not be planned is not a tag to delete)",
          label, #e.plan.errors, #e.plan.errors == 1 and "" or "s") }
      else
        local dst, msg, code = copy.endpoint(e.plan.destination)
        local p
        if dst then
          p, msg, code = prune.plan(e.plan, dst, { max = e.prune_max, force = job.force_prune,
                                                   parallel = job.parallel,
                                                   also_wanted = wanted[e.plan.destination] })
        end
        if not p then
          summary.errors[#summary.errors + 1] = { code = code, message = string.format("%s: prune: %s", label, msg) }
        else
          for _, err in ipairs(p.errors) do summary.errors[#summary.errors + 1] = err end
          local host = e.plan.destination
          if p.refused then
            summary.errors[#summary.errors + 1] = { code = "PRUNE_LIMIT", message = p.refused }
          end
          for _, k in ipairs(p.kept) do
            local a = { dst = replicate.image(host, k.repository, k.tag), action = "keep", reason = k.reason }
            if job.dry_run then summary.prune[#summary.prune + 1] = a else stderr("kept %s (%s)", a.dst, a.reason) end
          end
          if job.dry_run then
            for _, d in ipairs(p.deletions) do
              summary.prune[#summary.prune + 1] = { dst = replicate.image(host, d.repository, d.tag),
                action = "prune", reason = d.reason }
            end
          else
            local done, failures, kept = prune.apply(p, dst)
            for _, k in ipairs(kept) do
              stderr("kept %s (%s)", replicate.image(host, k.repository, k.tag), k.reason)
            end
            for _, d in ipairs(done) do
              stderr("deleted %s (%s, by %s)", replicate.image(host, d.repository, d.tag), d.digest or "?", d.how)
            end
            summary.tags_deleted = summary.tags_deleted + #done
            for _, f in ipairs(failures) do
              summary.errors[#summary.errors + 1] = { code = f.code, message = string.format(
                "%s: not deleted: %s", replicate.image(host, f.repository, f.tag), f.message) }
            end
          end
        end
      end
    end
  end
  if #summary.errors > 0 and summary.status == 0 then summary.status = 1 end
end

local function dry_run_output(summary, plan, format)
  summary.skipped = #plan.skipped
  if format == "json" then
    local actions = {}
    for _, a in ipairs(summary.actions) do actions[#actions + 1] = a end
    for _, a in ipairs(summary.prune or {}) do actions[#actions + 1] = a end
    for _, s in ipairs(plan.skipped) do
      actions[#actions + 1] = { src = s.src, action = "skip", rule = s.rule, reason = s.reason }
    end
    local copies, current = 0, 0
    for _, a in ipairs(summary.actions) do
      if a.action == "copy" then copies = copies + 1 elseif a.action == "up to date" then current = current + 1 end
    end
    local explain = {}
    for i, e in ipairs(plan.explain or {}) do
      explain[i] = { label = e.label, repositories = e.repositories, candidates = e.candidates,
                     selected = e.selected, rules = json.array(e.rules), dropped = json.array(e.dropped) }
    end
    io.stdout:write(json.encode({ actions = json.array(actions), explain = json.array(explain),
      warnings = json.array(plan.warnings or {}),
      totals = { copy = copies, up_to_date = current, skipped = #plan.skipped, errors = #summary.errors } }), "\n")
  else
    replicate.print_explain(plan.explain or {}, io.stdout)
    for _, a in ipairs(summary.prune or {}) do
      io.stdout:write(string.format("%-10s %s (%s)\n", a.action, a.dst, a.reason))
    end
    for _, s in ipairs(plan.skipped) do
      io.stdout:write(string.format("%-10s %s (%s%s)\n", "skip", s.src, s.rule and (s.rule .. ": ") or "",
        s.reason))
    end
    replicate.print_summary(summary)
  end
end

local function write_metrics(path, summary)
  local ok, metrics = pcall(lib, "metrics")
  local data = {
    bytes_transferred = summary.bytes_transferred, images_replicated = summary.images_replicated,
    images_up_to_date = summary.images_up_to_date, images_failed = summary.images_failed,
    blobs_copied = summary.blobs_copied, blobs_skipped = summary.blobs_skipped,
    blobs_mounted = summary.blobs_mounted, retries = summary.retries, tags_deleted = summary.tags_deleted,
    duration_seconds = summary.duration_seconds, repositories = summary.repositories,
    interrupted = summary.interrupted,
  }
  if ok and metrics.write then return metrics.write(path, data) end
  return core.fs.atomic_write(path, json.encode(data) .. "\n")
end

--- Run a job: plan, copy, record. Returns the exit status.
function M.execute(job, checkpoint)
  local plan, msg, code = M.plan(job)
  if not plan then
    stderr("%s", msg)
    return code == "INVALID" and 2 or 1
  end
  for _, w in ipairs(plan.warnings) do stderr("warning: %s", w) end
  local cp = checkpoint
  if not cp and job.checkpoint_file and not job.dry_run then
    local checkpoints = lib("checkpoint")
    cp, msg = checkpoints.create(job.checkpoint_file, job)
    if not cp then
      stderr("%s", msg)
      return 2
    end
  end
  if checkpoint then
    -- resume: only what the interrupted run planned and did not finish
    local remaining = {}
    for _, it in ipairs(plan.items) do
      local st = cp:state(it.key)
      if st and st ~= "done" and st ~= "skipped" then remaining[#remaining + 1] = it end
    end
    plan.items = remaining
  elseif cp then
    -- the whole plan first, so an interruption leaves a complete list
    for _, it in ipairs(plan.items) do cp:mark(it.key, "pending") end
    cp:flush()
  end
  local summary = replicate.run(plan, {
    parallel = job.parallel, dry_run = job.dry_run, checkpoint = cp,
    progress = job.progress, hooks = (job.entries[1] and plan.items[1] and plan.items[1].hooks) or {},
    copy = {},
  })
  prune_entries(job, plan, summary)
  if job.dry_run then
    dry_run_output(summary, plan, job.format)
  else
    replicate.print_summary(summary)
  end
  if job.metrics_file then
    local ok, err = write_metrics(job.metrics_file, summary)
    if not ok then stderr("writing metrics %s: %s", job.metrics_file, err) end
  end
  copy.shutdown()
  if job.strict and #plan.warnings > 0 and summary.status == 0 then
    stderr("%d warning%s and --strict: exit status 1", #plan.warnings, #plan.warnings == 1 and "" or "s")
    return 1
  end
  return summary.status
end

--- The job of `replicate` / `replicate-tree` from parsed options.
function M.job_from_options(o)
  local tls = {}
  if o["src-insecure"] and o.source then tls[o.source] = { insecure = true } end
  if o["dest-insecure"] and o.destination then tls[o.destination] = { insecure = true } end
  return {
    source = o.source, destination = o.destination, registries = tls,
    entries = { {
      repositories = o.repository, pattern = o["repository-pattern"],
      tags = { include = o["tag-filter"], exclude = o["exclude-tag"] },
      dest_prefix = o["dest-prefix"], platforms = o.platform, referrers = o.referrers or nil,
    } },
    parallel = o["parallel-workers"] or 8, dry_run = o["dry-run"] or false, force = o.force or nil,
    strict = o.strict or nil, prune = o.prune or nil, force_prune = o["force-prune"] or nil,
    format = o.format, checkpoint_file = o["checkpoint-file"], metrics_file = o["metrics-file"],
    progress = not o["no-progress"],
  }
end

-- Registry settings from a sync file (--config) merged into the job.
local function apply_config(job, path)
  local config = lib("config")
  local cfg, problems = config.load(path)
  if not cfg then
    for _, p in ipairs(problems or {}) do
      io.stderr:write(string.format("%s:%s:%s: %s\n", path, p.line or 0, p.column or 0, p.message))
    end
    return nil
  end
  job.registries = job.registries or {}
  for host, opts in pairs(cfg.registry_options or {}) do
    job.registries[host] = job.registries[host] or opts
  end
  return cfg
end
M.apply_config = apply_config

--- `replicate` with parsed options.
function M.replicate(o)
  if o[1] or o[2] then
    if not (o[1] and o[2]) or o[3] then
      return M.usage_error("replicate takes SRC_IMAGE DST_IMAGE, or --source/--destination", "replicate")
    end
    return M.single(o)
  end
  if not o.source or not o.destination then
    return M.usage_error("replicate needs --source and --destination (or SRC_IMAGE DST_IMAGE)", "replicate")
  end
  if not o.repository and not o["repository-pattern"] then
    return M.usage_error("replicate needs --repository REPO or --repository-pattern GLOB", "replicate")
  end
  for _, spec in ipairs({ o.source, o.destination }) do
    local ok, msg = registry.parse_spec(spec)
    if not ok then return M.usage_error(msg, "replicate") end
  end
  local job = M.job_from_options(o)
  if o.config and not apply_config(job, o.config) then return 2 end
  return M.execute(job)
end

--- One image: replicate SRC_IMAGE DST_IMAGE.
function M.single(o)
  local job = {
    entries = {}, parallel = o["parallel-workers"] or 8, dry_run = o["dry-run"],
    format = o.format, metrics_file = o["metrics-file"], progress = not o["no-progress"],
  }
  if o.config and not apply_config(job, o.config) then return 2 end
  configure_registries(job)
  for _, side in ipairs({ { o[1], "src-insecure" }, { o[2], "dest-insecure" } }) do
    if o[side[2]] then
      local r = core.ref.parse((side[1]:gsub("^docker://", "")))
      if r then copy.registry_options(r.api_host, { insecure = true }) end
    end
  end
  local plan = { items = { { src = o[1], dst = o[2], key = o[1] .. " -> " .. o[2],
                             repository = (o[1]:match("^[^/]+/(.-)[:@]") or o[1]) } },
                 skipped = {}, errors = {} }
  local summary = replicate.run(plan, {
    parallel = job.parallel, dry_run = job.dry_run, progress = job.progress,
    copy = { platforms = o.platform, referrers = o.referrers, force = o.force },
  })
  if job.dry_run then dry_run_output(summary, plan, job.format) else replicate.print_summary(summary) end
  if job.metrics_file then write_metrics(job.metrics_file, summary) end
  copy.shutdown()
  return summary.status
end

return M
