--- freightliner.runner: the glue between the replication commands and the
-- library: options -> plan -> run -> checkpoint, metrics, summary, status.
--
-- replicate, replicate-tree, resume and sync all end up in M.execute with a
-- "job" table: { source, destination, registries (host -> options),
-- entries = { { repositories | pattern | regex, tags (filter rules),
-- dest_prefix | dest_template, platforms, referrers, policy } },
-- parallel, dry_run, format, checkpoint_file, metrics_file, progress,
-- strict (a selection that selects nothing is exit 1), run_id (the CLI
-- run's, kept by resume), resumed (merge the metrics file), copy (fl.copy
-- options of the single-image form) }.
-- The job is also what a checkpoint records as its plan, so `resume` can
-- rebuild the same run from the checkpoint alone.
--
-- Before any transfer: policy hooks are wrapped so their results are
-- type-checked (clicheck.wrap_policy), every planned destination must be a
-- valid reference, and selections that select nothing (repository
-- patterns, tag rules) are reported; a problem there is a user error
-- (exit 2). After the copies, entries with prune delete what they no
-- longer select (freightliner.prune, with its guardrails). What the run
-- says is freightliner.report's job.

local core = require("freightliner.core")
local copy = require("freightliner.copy")
local registry = require("freightliner.registry")
local replicate = require("freightliner.replicate")
local log = require("freightliner.log")
local exitcode = require("freightliner.exitcode")
local clicheck = require("freightliner.clicheck")
local report = require("freightliner.report")

local M = {}

-- A message for the user on stderr: "freightliner: ..." or a JSON log line.
local function stderr(fmt, ...)
  local msg = string.format(fmt, ...)
  if log.json() then
    log.log("error", msg)
  else
    io.stderr:write("freightliner: ", require("freightliner.printable").escape(msg), "\n")
  end
end
M.stderr = stderr

function M.usage_error(msg, command)
  stderr("%s; see 'freightliner help %s'", msg, command)
  return exitcode.USAGE
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
  return clicheck.wrap_policy(hooks, path)
end
M.load_policy = load_policy

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
  local all = { items = {}, skipped = {}, errors = {}, warnings = {}, explain = {}, entries = {}, selections = {} }
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
      shard = job.shard,
    }
    if not plan then return nil, msg, code end
    all.selections[#all.selections + 1] = { entry = entry, source = source, index = i,
      selected = #plan.items + #plan.skipped + #plan.errors }
    local verify_lib = entry.verify and lib("verify")
    for _, it in ipairs(plan.items) do
      it.copy = { platforms = entry.platforms, referrers = entry.referrers, force = job.force,
                  verify = entry.verify }
      it.hooks = hooks
      it.entry = i
      if verify_lib and verify_lib.is_signature_tag(it.tag) then
        -- a signature is not an image to verify; it travels with its image
        all.skipped[#all.skipped + 1] = { src = it.src, reason = "signature tag (copied with --referrers)" }
      else
        all.items[#all.items + 1] = it
      end
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
            if job.dry_run then
              summary.prune[#summary.prune + 1] = a
            else
              log.log("warn", string.format("kept %s (%s)", a.dst, a.reason), nil, { prune = "kept" })
            end
          end
          if job.dry_run then
            for _, d in ipairs(p.deletions) do
              summary.prune[#summary.prune + 1] = { dst = replicate.image(host, d.repository, d.tag),
                action = "prune", reason = d.reason }
            end
          else
            local done, failures, kept = prune.apply(p, dst)
            for _, k in ipairs(kept) do
              log.log("warn", string.format("kept %s (%s)", replicate.image(host, k.repository, k.tag), k.reason),
                nil, { prune = "kept" })
            end
            -- every deletion is logged (warn: shown at the default level)
            for _, d in ipairs(done) do
              log.log("warn", string.format("deleted %s (%s, by %s)", replicate.image(host, d.repository, d.tag),
                d.digest or "?", d.how), nil, { prune = "deleted", digest = d.digest })
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

-- Every planned image's references, checked before any transfer: a
-- destination that naming rules or a policy made malformed is a
-- configuration error (exit 2). A malformed source name came from the
-- registry: that image fails, the others are copied.
local function check_items(plan)
  for _, it in ipairs(plan.items) do
    if clicheck.image(it.src) then
      local ok, msg = clicheck.image(it.dst)
      if not ok then
        exitcode.raise(exitcode.USAGE, string.format(
          "the destination of %s would be '%s', which is not a valid reference: %s "
          .. "(check the entry's prefix, template and the policy's rename hook)",
          it.src, it.dst, msg))
      end
    end
  end
end

-- Selections that select nothing: a warning with the reason (exit 1 under
-- --strict). Returns how many there were.
local function check_selections(job, plan)
  local n = 0
  for _, s in ipairs(plan.selections or {}) do
    local e = s.entry
    if s.selected == 0 and (e.pattern or e.regex or e.tree_prefix) then
      n = n + 1
      local msg
      if e.tree_prefix then
        msg = string.format("no repository of %s is under the prefix '%s' (the catalog has none named '%s/...')",
          s.source, e.tree_prefix, e.tree_prefix)
      elseif e.pattern then
        msg = string.format("the repository pattern '%s' matched no repository of %s", e.pattern, s.source)
        if not e.pattern:find("[%*%?%[]") then
          msg = msg .. string.format("; a pattern without a wildcard matches only the repository named exactly "
            .. "'%s': use '%s/*' for the repositories under it", e.pattern, e.pattern)
        end
      else
        msg = string.format("the repository regex '%s' matched no repository of %s", e.regex, s.source)
      end
      if #job.entries > 1 then msg = string.format("sync entry %d: %s", s.index, msg) end
      log.log(job.strict and "error" or "warn", msg .. (job.strict and " (an error under --strict)" or ""), nil,
        { selection = "empty", source = s.source, entry = s.index })
    end
  end
  return n
end

-- A failure message with what would fix it: the platforms an index has,
-- a host that is not a registry, a missing OCI layout directory.
local function explain(item, msg, code)
  local src = copy.resolve(item.src, "source")
  if not src then return msg end
  if tostring(msg):find("no manifest in the index matches", 1, true) then
    local m = src.registry:manifest(src.repository .. (src.reference:match("^sha256:") and "@" or ":") .. src.reference)
    if m and m.parsed then
      local names = {}
      for _, p in ipairs(require("freightliner.describe").platforms(m.parsed)) do names[#names + 1] = p.platform end
      if #names > 0 then msg = string.format("%s (it has: %s)", msg, table.concat(names, ", ")) end
    end
    return msg
  end
  local better = clicheck.explain(src.registry, msg, code)
  if better == msg then
    local dst = copy.resolve(item.dst, "destination")
    if dst then better = clicheck.explain(dst.registry, msg, code) end
  end
  return better
end

--- Run a job: plan, copy, record. Returns the exit status.
function M.execute(job, checkpoint)
  job.run_id = job.run_id or log.run_id()
  local plan, msg, code = M.plan(job)
  if not plan then
    stderr("%s", msg)
    return code == "INVALID" and exitcode.USAGE or exitcode.FAILED
  end
  check_items(plan)
  local empty = check_selections(job, plan)
  for _, w in ipairs(plan.warnings) do
    log.log(job.strict and "error" or "warn", w .. (job.strict and " (an error under --strict)" or ""), nil,
      { selection = "rule" })
  end
  empty = empty + #plan.warnings
  local cp = checkpoint
  if not cp and job.checkpoint_file and not job.dry_run then
    local checkpoints = lib("checkpoint")
    cp, msg = checkpoints.create(job.checkpoint_file, job, { run_id = job.run_id })
    if not cp then
      stderr("%s", msg)
      return exitcode.USAGE
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
  local rec = report.recorder(plan, job, explain)
  local summary = replicate.run(plan, {
    parallel = job.parallel, dry_run = job.dry_run, checkpoint = cp,
    progress = job.progress, hooks = {}, copy = job.copy or {},
  })
  prune_entries(job, plan, summary)
  local status = M.finish_archives(report.finish(rec, summary))
  copy.shutdown()
  if status == exitcode.OK and empty > 0 and job.strict then status = exitcode.FAILED end
  return status
end

--- The copy option `verify` from --verify-key FILE (repeatable) and
-- --verify-require any|all, or nil.
function M.verify_from_options(o)
  if not o["verify-key"] then return nil end
  -- absolute, so that a checkpoint's `resume` finds them from anywhere
  local keys, cwd = {}, os.getenv("PWD")
  for i, k in ipairs(o["verify-key"]) do
    keys[i] = (k:sub(1, 1) ~= "/" and not k:find("-----BEGIN", 1, true) and cwd and cwd ~= "")
      and (cwd .. "/" .. k) or k
  end
  return { keys = keys, require = o["verify-require"] or "any" }
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
      verify = M.verify_from_options(o),
    } },
    parallel = o.parallel or core.defaults.workers, dry_run = o["dry-run"] or false, force = o.force or nil,
    format = o.format, checkpoint_file = o["checkpoint-file"], metrics_file = o["metrics-file"],
    progress = not o["no-progress"], strict = o.strict or nil,
    prune = o.prune or nil, force_prune = o["force-prune"] or nil,
    shard = o.shard, -- resolved by freightliner.shard in the command
  }
end

--- Checks shared by the replication commands, before anything is opened:
-- --format (only for the dry-run plan), platforms. Raises a usage error.
function M.check_options(o, command)
  if o.format ~= nil then
    if o.format ~= "text" and o.format ~= "json" then
      exitcode.usage(string.format("unknown --format '%s' (expected text or json)", o.format), command)
    end
    if not o["dry-run"] then
      exitcode.usage("--format applies to the plan of --dry-run only; for JSON logs of a run use the global "
        .. "option --log-format json", command)
    end
  end
  if o["dry-run"] and o["checkpoint-file"] then
    exitcode.usage("--checkpoint-file does not apply to --dry-run (a dry run writes nothing, so there is "
      .. "nothing to resume)", command)
  end
  for _, p in ipairs(o.platform or {}) do
    local ok, msg = clicheck.platform(p)
    if not ok then exitcode.usage(msg, command) end
  end
  for _, name in ipairs({ "metrics-file", "checkpoint-file" }) do
    local ok, msg = clicheck.writable(o[name])
    if not ok then exitcode.usage(string.format("--%s: %s", name, msg), command) end
  end
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

-- Options of `replicate` that only the repository form takes, and why.
local REPOSITORY_FORM = {
  { "checkpoint-file", "one image needs no checkpoint: run the same command again" },
  { "dest-prefix", "the destination image is named in full by DST_IMAGE" },
  { "tag-filter", "SRC_IMAGE names its one tag" },
  { "exclude-tag", "SRC_IMAGE names its one tag" },
  { "repository", "SRC_IMAGE names the repository" },
  { "repository-pattern", "SRC_IMAGE names the repository" },
  { "source", "SRC_IMAGE names the source" },
  { "destination", "DST_IMAGE names the destination" },
  { "strict", "one image selects no repositories or tags" },
}

--- `replicate` with parsed options.
function M.replicate(o)
  if o["verify-key"] or o["verify-require"] then
    local ok, msg = lib("verify").preflight(M.verify_from_options(o) or { keys = {} })
    if not ok then return M.usage_error(msg, "replicate") end
  end
  if o[1] or o[2] then
    if not (o[1] and o[2]) or o[3] then
      return M.usage_error("replicate takes SRC_IMAGE DST_IMAGE, or --source/--destination", "replicate")
    end
    for _, f in ipairs(REPOSITORY_FORM) do
      if o[f[1]] ~= nil then
        return M.usage_error(string.format("--%s does not apply to replicate SRC_IMAGE DST_IMAGE (%s)", f[1], f[2]),
          "replicate")
      end
    end
    M.check_options(o, "replicate")
    return M.single(o)
  end
  M.check_options(o, "replicate")
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
  if o.config and not apply_config(job, o.config) then return exitcode.USAGE end
  return M.execute(job)
end

--- One image: replicate SRC_IMAGE DST_IMAGE.
function M.single(o)
  for i, what in ipairs({ "SRC_IMAGE", "DST_IMAGE" }) do
    local ok, msg = clicheck.image(o[i])
    if not ok then return M.usage_error(string.format("%s: %s", what, msg), "replicate") end
  end
  local job = {
    entries = {}, parallel = o.parallel or core.defaults.workers, dry_run = o["dry-run"], run_id = log.run_id(),
    format = o.format, metrics_file = o["metrics-file"], progress = not o["no-progress"],
    copy = { platforms = o.platform, referrers = o.referrers, force = o.force,
             verify = M.verify_from_options(o) },
  }
  if o.config and not apply_config(job, o.config) then return exitcode.USAGE end
  configure_registries(job)
  for _, side in ipairs({ { o[1], "src-insecure" }, { o[2], "dest-insecure" } }) do
    if o[side[2]] then
      local r = clicheck.image(side[1])
      if r and r.ref then copy.registry_options(r.ref.api_host, { insecure = true }) end
    end
  end
  local plan = { items = { { src = o[1], dst = o[2], key = o[1] .. " -> " .. o[2],
                             repository = (o[1]:match("^[^/]+/(.-)[:@]") or o[1]) } },
                 skipped = {}, errors = {} }
  local rec = report.recorder(plan, job, explain)
  local summary = replicate.run(plan, {
    parallel = job.parallel, dry_run = job.dry_run, progress = job.progress, hooks = {}, copy = job.copy,
  })
  local status = M.finish_archives(report.finish(rec, summary))
  copy.shutdown()
  return status
end

--- Write the archive files a run copied into (not after an interruption:
-- their working directories stay, and the next run goes on from them).
-- Returns the exit status, 1 when an archive could not be written.
function M.finish_archives(status)
  if core.engine.signal() then return status end
  local ok, msg, code = copy.finish_archives()
  if ok then return status end
  stderr("failed: %s (%s)", msg, code)
  return status == 0 and 1 or status
end

return M
