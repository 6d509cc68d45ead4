--- freightliner.replicate: plan and run the replication of many images.
--
--   local plan = replicate.plan{ source = "src:5000", destination = "dst:5000",
--     repositories = { "team/app" } | pattern = "team/*" | regex = "^team/",
--     exclude_repositories = { "team/old-*" },
--     tags = { include =, exclude =, regex =, exclude_regex =, semver =,
--              latest =, latest_by =, include_prerelease =, digests = },
--       (or select_tags = function(repo, tags) return kept, skipped end)
--     dest_prefix = "mirror" | dest_template = "m/{repo}:{tag}" |
--       rename_prefix = { from =, to = } | dest = function(repo, tag),
--     hooks = { rename =, filter = }, parallel = 8, label = "sync[1]" }
--   local summary = replicate.run(plan, { parallel = 8, dry_run = false,
--     checkpoint = cp, progress = true,
--     copy = { platforms =, referrers = }, hooks = { retry =, on_done =, on_error = } })
--
-- plan() is the one selection pipeline of Freightliner: replicate,
-- replicate-tree, sync, resume, the dry run and Lua scripts all build their
-- list of images here. In order: repositories (the given list, or the
-- source catalog filtered by pattern, regex and exclude_repositories);
-- their tags, listed concurrently (`parallel` at a time, default 8); each
-- listed repository and tag checked against the repository / tag grammar
-- (a name a registry lists is data: it is never parsed again as part of a
-- reference, so a listed "x@sha256:..." is refused, not followed); the tag
-- rules of freightliner.filters (one implementation); the policy's
-- filter(image) hook; destination naming by freightliner.naming (prefix,
-- template, rename_prefix or a function, then the policy's rename hook).
-- Pinned digests (tags.digests) become items copied by digest.
--
-- Items: { key, src, dst (display strings), source, destination (tables
-- fl.copy takes: { registry = spec, repository =, tag | digest = }),
-- repository, tag | digest, dst_repository, dst_tag }.
-- plan.explain: { label, repositories, candidates, selected, rules = { {
-- rule, seen, passed } }, dropped = { {image, rule, reason} } } and
-- plan.warnings: a rule (or repository selection) that selected nothing.
-- The source is opened through fl.copy's store cache when its options are
-- the ones fl.copy uses, so the copies reuse that endpoint.
--
-- run() keeps `checks` images in flight (default 32, at least `parallel`),
-- so up-to-date checks do not wait for blob workers (each registry's
-- max_concurrency still bounds its requests); before each image,
-- freightliner.budget pauses while the source's pull budget is below
-- min_remaining (the registry's option, else opts.rate_limit.min_remaining).
-- run() copies the items with fl.parallel, calls the run-time hooks (see
-- README, "Hooks"), records each image in the checkpoint as it finishes,
-- stops cleanly on SIGINT/SIGTERM and returns a summary with the exit
-- status the CLI uses: 0 all done, 1 some images failed, 130/143
-- interrupted.

local core = require("freightliner.core")
local copy = require("freightliner.copy")
local exitcode = require("freightliner.exitcode")
local registry = require("freightliner.registry")
local progress = require("freightliner.progress")
local filters = require("freightliner.filters")
local naming = require("freightliner.naming")
local budget = require("freightliner.budget")

local M = {}

M.CHECKS = 32 -- images in flight by default (see run)
M.BIG_PLAN = 10000 -- items beyond which the collector runs without a pause

-- Display form of an image (logs, dry run, checkpoint key); never parsed.
local function image(host, repo, ref)
  local sep = ref:find(":", 1, true) and "@" or ":"
  if host:match("^oci:") then return host .. sep .. ref end
  return host .. "/" .. repo .. sep .. ref
end
M.image = image

-- A hook from a policy, called in protected mode: ok, results... or
-- false, message naming the policy file and line (the error's position).
-- A result of the wrong type from a plan-time hook (filter, rename) is a
-- configuration error found before any transfer: it is raised again
-- (exit 2) rather than failing one image.
local PLAN_TIME = { filter = true, rename = true }
local function call_hook(name, fn, ...)
  local r = table.pack(xpcall(fn, function(e)
    if PLAN_TIME[name] and exitcode.is_user_error(e) then return e end
    local msg = tostring(e)
    local info = debug.getinfo(2, "Sl")
    if info and info.currentline and info.currentline > 0 and not msg:find("^[^:]+:%d+:") then
      msg = string.format("%s:%d: %s", info.short_src, info.currentline, msg)
    end
    return msg
  end, ...))
  if not r[1] then
    if exitcode.is_user_error(r[2]) then error(r[2], 0) end
    return false, string.format("policy hook %s raised: %s", name, r[2])
  end
  return true, table.unpack(r, 2, r.n)
end
M.call_hook = call_hook

local PLAN_KEYS = {
  source = true, destination = true, source_options = true, repositories = true, pattern = true,
  regex = true, exclude_repositories = true, repository_filter = true, tags = true, select_tags = true,
  dest_prefix = true, dest_template = true, rename_prefix = true, dest = true, hooks = true,
  parallel = true, label = true, created_concurrency = true, shard = true,
}
M.PLAN_KEYS = PLAN_KEYS

-- { [tag] = created }, { [tag] = message } for many tags, `n` lookups at
-- a time on short-lived threads (core.created.many: per tag two GETs for
-- an image, three for an index).
local function created_many(ep, repo, tags, n)
  return core.created.many(ep, repo, tags, { concurrency = n })
end

local function repository_list(src, p)
  if p.repositories then
    local repos = {}
    for i, r in ipairs(type(p.repositories) == "table" and p.repositories or { p.repositories }) do
      repos[i] = math.type(r) and tostring(r) or r
    end
    return repos
  end
  local repos, msg, code = src:catalog{}
  if not repos then
    return nil, string.format("listing repositories of %s: %s", p.source, msg), code
  end
  local match, err
  match, err, code = filters.repository_selector{ glob = p.pattern, regex = p.regex,
                                                   exclude = p.exclude_repositories }
  if not match then return nil, err, code end
  local kept = {}
  for _, r in ipairs(repos) do
    if match(r) and (not p.repository_filter or p.repository_filter(r)) then kept[#kept + 1] = r end
  end
  return kept
end

--- Build the list of images to copy. Returns plan | nil, message, CODE.
function M.plan(p)
  if type(p) ~= "table" then error("replicate.plan: expected a table of options", 2) end
  require("freightliner.schema").check_keys("replicate.plan", p, PLAN_KEYS, 2)
  if type(p.source) ~= "string" or type(p.destination) ~= "string" then
    error("replicate.plan: source and destination must be registry specs (host[:port] or oci:PATH)", 2)
  end
  local hooks = p.hooks or {}
  local label = p.label or (p.source .. " -> " .. p.destination)
  -- fl.copy's endpoint for the source when the options match (one scheme
  -- probe and one token for the listing and the copies), else our own
  local src, msg, code = copy.store(p.source, p.source_options)
  local own = src == false
  if own then src, msg, code = registry.open(p.source, p.source_options) end
  if not src then return nil, msg, code end
  local select = p.select_tags
  if not select then
    local n = math.max(1, math.tointeger(p.created_concurrency or p.parallel) or core.defaults.workers)
    select, msg, code = filters.tag_selector(p.tags or {}, {
      created_many = function(repo, tags) return created_many(src.ep, repo, tags, n) end })
    if not select then
      if own then src:close() end
      return nil, string.format("%s: %s", label, msg), code
    end
  end
  local dest = p.dest
  if type(dest) ~= "function" then
    dest, msg, code = naming.destination{ prefix = p.dest_prefix, template = p.dest_template,
                                          rename_prefix = p.rename_prefix }
    if not dest then
      if own then src:close() end
      return nil, string.format("%s: %s", label, msg), code
    end
  end
  local repos
  repos, msg, code = repository_list(src, p)
  if not repos then
    if own then src:close() end
    return nil, msg, code
  end

  -- scope: the destination repositories this entry maps to (for prune);
  -- wanted[dst_repo][dst_tag]: the destination tags it plans
  local plan = { source = p.source, destination = p.destination, items = {}, skipped = {},
                 errors = {}, warnings = {}, scope = {}, wanted = {} }
  local explain = { label = label, repositories = 0, candidates = 0, selected = 0, rules = {},
                    dropped = {} }
  plan.explain = explain
  local rule_index = {}
  local function drop(repo, ref, rule, reason)
    local entry = { src = image(p.source, repo, ref), image = image(p.source, repo, ref),
                    rule = rule, reason = reason }
    plan.skipped[#plan.skipped + 1] = entry
    explain.dropped[#explain.dropped + 1] = entry
  end
  local function count(rule, seen, passed)
    local r = rule_index[rule]
    if not r then
      r = { rule = rule, seen = 0, passed = 0 }
      rule_index[rule] = r
      explain.rules[#explain.rules + 1] = r
    end
    r.seen, r.passed = r.seen + seen, r.passed + passed
  end

  local names, uses = {}, {}
  for _, repo in ipairs(repos) do
    local ok, err = naming.check_repository(repo)
    if ok then
      names[#names + 1] = repo
      uses[repo] = (uses[repo] or 0) + 1
    else
      plan.errors[#plan.errors + 1] = { repository = repo, code = "INVALID",
        message = string.format("%s: source repository refused: %s", label, err) }
    end
  end
  explain.repositories = #names
  if #names == 0 and not p.repositories then
    plan.warnings[#plan.warnings + 1] = string.format("%s: the repository selection (%s) selects no repository of %s",
      label, p.pattern and ("pattern '" .. p.pattern .. "'") or p.regex and ("regex '" .. p.regex .. "'")
        or "catalog", p.source)
  end
  -- as many tag lists in flight as run() has checks (each registry's
  -- max_concurrency still bounds them)
  local listed, failed = src:tags_many(names,
    { concurrency = math.max(math.tointeger(p.parallel) or core.defaults.workers, M.CHECKS) })

  local function add_item(repo, ref, is_digest)
    local dst_repo, dst_tag, dcode = dest(repo, (not is_digest) and ref or nil)
    if not dst_repo then
      plan.errors[#plan.errors + 1] = { repository = repo, message = dst_tag, code = dcode }
      return
    end
    if hooks.rename then
      local ok, r, t = call_hook("rename", hooks.rename, dst_repo, dst_tag)
      if not ok then
        plan.errors[#plan.errors + 1] = { repository = repo, code = "POLICY",
          message = string.format("%s: %s: %s", label, image(p.source, repo, ref), r) }
        return
      end
      dst_repo, dst_tag = r or dst_repo, (not is_digest) and t or dst_tag
      local vok, verr = naming.check_repository(dst_repo)
      if vok and not is_digest then vok, verr = naming.check_tag(dst_tag) end
      if not vok then
        -- a policy-returned value that makes no valid destination is a
        -- configuration error, found before any transfer (exit 2)
        exitcode.raise(exitcode.USAGE, string.format("%s: the rename hook made the destination of %s "
          .. "not a valid reference: %s", label, image(p.source, repo, ref), verr))
      end
    end
    local item = {
      repository = repo, dst_repository = dst_repo,
      src = image(p.source, repo, ref),
      dst = image(p.destination, dst_repo, is_digest and ref or dst_tag),
      source = { registry = p.source, repository = repo },
      destination = { registry = p.destination, repository = dst_repo },
    }
    if is_digest then
      item.digest = ref
      item.source.digest, item.destination.digest = ref, ref
    else
      item.tag, item.dst_tag = ref, dst_tag
      item.source.tag, item.destination.tag = ref, dst_tag
    end
    item.key = item.src .. " -> " .. item.dst
    plan.items[#plan.items + 1] = item
    plan.scope[dst_repo] = true
    if dst_tag and not is_digest then
      plan.wanted[dst_repo] = plan.wanted[dst_repo] or {}
      plan.wanted[dst_repo][dst_tag] = true
    end
    explain.selected = explain.selected + 1
  end

  for _, repo in ipairs(names) do
    local tags = listed[repo]
    if tags and uses[repo] > 1 then
      tags = table.move(tags, 1, #tags, 1, {}) -- a repeated repository: each use its own list
    end
    if not tags then
      local e = failed[repo]
      plan.errors[#plan.errors + 1] = { repository = repo,
        message = string.format("listing tags of %s/%s: %s", p.source, repo, e.message), code = e.code }
    else
      -- names are data: a listed tag that is not a tag is refused here
      local valid, refused = {}, nil
      for _, tag in ipairs(tags) do
        local ok, err = naming.check_tag(tag)
        if ok then
          valid[#valid + 1] = tag
        else
          drop(repo, tostring(tag), "invalid tag", err)
          refused = refused or err
        end
      end
      if refused then
        plan.warnings[#plan.warnings + 1] = string.format("%s: %s lists %d name%s that %s not a tag, "
          .. "left out (first: %s)", label, image(p.source, repo, ""):sub(1, -2), #tags - #valid,
          #tags - #valid == 1 and "" or "s", #tags - #valid == 1 and "is" or "are", refused)
      end
      explain.candidates = explain.candidates + #valid
      for _, tag in ipairs(#valid > 0 and valid or { "latest" }) do
        local r, t = dest(repo, tag)
        if r and hooks.rename then
          local ok, r2 = call_hook("rename", hooks.rename, r, t)
          r = ok and (r2 or r) or nil
        end
        if r then plan.scope[r] = true end
      end
      local selected, skipped, digests, stats = select(repo, valid)
      for _, s in ipairs(skipped or {}) do
        drop(repo, s.tag, s.rule or "select_tags", s.reason)
      end
      for _, st in ipairs(stats or {}) do count(st.rule, st.seen, st.passed) end
      local passed = 0
      for _, tag in ipairs(selected) do
        local ok, keep, why = true, true, nil
        if hooks.filter then
          ok, keep, why = call_hook("filter", hooks.filter, { repository = repo, tag = tag, registry = p.source })
        end
        if not ok then
          plan.errors[#plan.errors + 1] = { repository = repo, code = "POLICY",
            message = string.format("%s: %s: %s", label, image(p.source, repo, tag), keep) }
        elseif keep then
          passed = passed + 1
          add_item(repo, tag, false)
        else
          drop(repo, tag, "policy filter", why and tostring(why) or "the policy's filter returned false")
        end
      end
      if hooks.filter then count("policy filter", #selected, passed) end
      for _, d in ipairs(digests or {}) do add_item(repo, d, true) end
    end
  end
  for _, r in ipairs(explain.rules) do
    -- (tags.digests drops every tag on purpose: only the pins are copied)
    if r.seen > 0 and r.passed == 0 and r.rule ~= "tags.digests" then
      plan.warnings[#plan.warnings + 1] = string.format(
        "%s: rule %s selects nothing (%d candidate tag%s in %d repositor%s)", label, r.rule, r.seen,
        r.seen == 1 and "" or "s", #names, #names == 1 and "y" or "ies")
    end
  end
  if own then src:close() end
  -- sharding (--shard INDEX/COUNT): keep only this shard's part (freightliner.shard)
  if p.shard then require("freightliner.shard").apply(plan, p.shard) end
  return plan
end

local function new_stats()
  return { bytes_transferred = 0, images_replicated = 0, images_up_to_date = 0, images_failed = 0,
           blobs_copied = 0, blobs_skipped = 0, blobs_mounted = 0 }
end

local function add(stats, r)
  stats.bytes_transferred = stats.bytes_transferred + (r.bytes or 0)
  stats.blobs_copied = stats.blobs_copied + (r.blobs_copied or 0)
  stats.blobs_skipped = stats.blobs_skipped + (r.blobs_skipped or 0)
  stats.blobs_mounted = stats.blobs_mounted + (r.blobs_mounted or 0)
end

-- The failure record every run-time hook gets (retry, on_error).
local function failure(item, msg, code, attempt)
  return { image = item.src, source = item.src, destination = item.dst, message = msg, code = code,
           attempt = attempt }
end

-- One image, with the policy's retry hook: retry(failure) -> delay | nil.
-- A hook that raises ends the image: nil, message, "POLICY".
local function copy_with_retry(item, copy_opts, hooks)
  local attempt = 1
  while true do
    local r, msg, code = copy.copy(item.source or item.src, item.destination or item.dst, copy_opts)
    if r or not hooks.retry or core.engine.signal() then return r, msg, code, attempt end
    local ok, delay = call_hook("retry", hooks.retry, failure(item, msg, code, attempt), attempt)
    if not ok then return nil, delay, "POLICY", attempt end
    if not delay then return r, msg, code, attempt end
    copy.sleep(delay)
    attempt = attempt + 1
  end
end

local function exit_status(summary)
  local sig = core.engine.signal()
  if sig then return 128 + sig end
  if summary.images_failed > 0 or #summary.errors > 0 then return 1 end
  return 0
end

local RUN_KEYS = { parallel = true, dry_run = true, checkpoint = true, progress = true, copy = true,
                   hooks = true, metrics_file = true, checks = true, rate_limit = true, stop = true }

--- Copy every item of the plan. Returns the summary (see module comment).
-- The globals it changes (the engine's worker count and progress
-- callback) are restored before it returns.
function M.run(plan, opts)
  opts = opts or {}
  require("freightliner.schema").check_keys("replicate.run", opts, RUN_KEYS, 2)
  local hooks = opts.hooks or {}
  local parallel = opts.parallel or core.defaults.workers
  core.engine.trap_signals()
  local saved = copy.settings()
  copy.configure{ workers = parallel }
  local before = copy.counters()
  local retries_before, gets_before = before.retries, before.source_manifest_gets
  local cp = opts.checkpoint
  local display = opts.progress and progress.wanted() and progress.new(#plan.items) or nil
  if display then copy.configure{ progress = display.update } end
  local started = core.now()
  local summary = new_stats()
  summary.repositories, summary.failures, summary.actions = {}, {}, {}
  summary.errors = plan.errors or {}
  summary.planned = #plan.items
  summary.warnings = plan.warnings or {}
  local copy_opts = {}
  for k, v in pairs(opts.copy or {}) do copy_opts[k] = v end
  copy_opts.dry_run = opts.dry_run

  local function failed(item, repo_stats, msg, code, attempt)
    summary.images_failed = summary.images_failed + 1
    repo_stats.images_failed = repo_stats.images_failed + 1
    summary.failures[#summary.failures + 1] = { src = item.src, dst = item.dst, message = msg, code = code,
                                                attempt = attempt }
    if cp then cp:mark(item.key, "failed", { error = msg, code = code }) end
  end

  -- opts.stop(): true when the caller wants the run to end (serve's job
  -- cancellation); polled before each image, like a signal
  local function stopped() return core.engine.signal() or (opts.stop and opts.stop()) end

  local guard = budget.new{ min_remaining = (opts.rate_limit or {}).min_remaining }
  -- the source store of an item, resolved once per source registry
  local sources = {}
  local function source_of(item)
    local key = type(item.source) == "table" and item.source.registry or item.src
    local s = sources[key]
    if s == nil then
      s = copy.resolve(item.source or item.src, "source") or false
      sources[key] = s
    end
    return s or nil
  end
  -- a run makes garbage at a steady rate (a result per image) over a live
  -- set that a big plan makes large: then collect as it goes, not at twice it
  local pause = #plan.items > M.BIG_PLAN and collectgarbage("setpause", 100)
  copy.parallel(plan.items, function(item)
    if stopped() then return end
    local item_opts, item_hooks = copy_opts, item.hooks or hooks
    if item.copy then
      item_opts = {}
      for k, v in pairs(copy_opts) do item_opts[k] = v end
      for k, v in pairs(item.copy) do item_opts[k] = v end
    end
    if cp and cp:state(item.key) == "done" then
      summary.images_up_to_date = summary.images_up_to_date + 1
      return
    end
    local source = source_of(item)
    local probe = source and guard:wait(source.registry)
    if stopped() then
      if probe then guard:probed(source.registry) end
      return
    end
    if cp and not opts.dry_run then cp:mark(item.key, "in_progress") end
    local r, msg, code, attempt = copy_with_retry(item, item_opts, item_hooks)
    if probe then guard:probed(source.registry) end
    local repo_stats = summary.repositories[item.repository] or new_stats()
    summary.repositories[item.repository] = repo_stats
    if opts.dry_run then
      summary.actions[#summary.actions + 1] = {
        src = item.src, dst = item.dst,
        action = r and (r.up_to_date and "up to date" or "copy") or "error",
        reason = r and (r.up_to_date and "destination has digest " .. r.digest
          or "destination lacks " .. (r.source_digest or "it")) or msg,
      }
      return
    end
    if r then
      add(summary, r)
      add(repo_stats, r)
      local field = r.up_to_date and "images_up_to_date" or "images_replicated"
      summary[field] = summary[field] + 1
      repo_stats[field] = repo_stats[field] + 1
      local ok, err = true, nil
      if item_hooks.on_done then
        r.source, r.destination = item.src, item.dst
        ok, err = call_hook("on_done", item_hooks.on_done, r)
      end
      if ok then
        if cp then cp:mark(item.key, "done", { digest = r.digest }) end
      else
        -- the copy happened, but the policy failed on it: the image counts as failed
        summary[field] = summary[field] - 1
        repo_stats[field] = repo_stats[field] - 1
        failed(item, repo_stats, err, "POLICY", attempt)
      end
    elseif code == "CANCELLED" and stopped() then
      if cp then cp:mark(item.key, "pending") end
    else
      failed(item, repo_stats, msg, code, attempt)
      if item_hooks.on_error then
        local ok, err = call_hook("on_error", item_hooks.on_error, failure(item, msg, code, attempt))
        if not ok then
          summary.errors[#summary.errors + 1] = { message = string.format("%s: %s", item.src, err),
                                                  code = "POLICY" }
        end
      end
    end
  end, { concurrency = math.max(parallel, opts.checks or M.CHECKS) })

  if display then display.finish() end
  local now = core.now()
  summary.duration_seconds = now - started
  -- this run's counts: the process-wide counters less what they were at the start
  local counters = copy.counters()
  summary.retries = (counters.retries or 0) - (retries_before or 0)
  summary.source_manifest_gets = (counters.source_manifest_gets or 0) - (gets_before or 0)
  summary.interrupted = core.engine.signal() ~= nil
  summary.status = exit_status(summary)
  if cp then cp:compact() end
  if pause then collectgarbage("setpause", pause) end
  copy.restore(saved)
  return summary
end

--- Print what each entry's selection saw and did (the dry run): per
-- entry, candidates and selected, and what each rule let through (the
-- dropped tags are the "skip" lines, each with its rule).
function M.print_explain(explain, out)
  out = out or io.stdout
  for _, e in ipairs(explain) do
    out:write(string.format("entry %s: %d repositor%s, %d candidate tag%s, %d selected\n", e.label,
      e.repositories, e.repositories == 1 and "y" or "ies", e.candidates, e.candidates == 1 and "" or "s",
      e.selected))
    for _, r in ipairs(e.rules) do
      out:write(string.format("  rule %-20s %d of %d passed\n", r.rule, r.passed, r.seen))
    end
  end
end

--- Print a human summary of a run (or a dry run) to `out`.
function M.print_summary(summary, out)
  out = out or io.stdout
  if summary.actions and #summary.actions > 0 then
    table.sort(summary.actions, function(a, b) return a.src < b.src end)
    local copies, current = 0, 0
    for _, a in ipairs(summary.actions) do
      out:write(string.format("%-10s %s -> %s (%s)\n", a.action, a.src, a.dst, a.reason))
      if a.action == "copy" then copies = copies + 1 elseif a.action == "up to date" then current = current + 1 end
    end
    for _, e in ipairs(summary.errors) do
      out:write(string.format("failed: %s (%s)\n", e.message, e.code))
    end
    out:write(string.format("dry run: %d to copy, %d up to date, %d skipped by filter; nothing was written\n",
      copies, current, summary.skipped or 0))
    return
  end
  for _, f in ipairs(summary.failures) do
    out:write(string.format("failed: %s -> %s: %s (%s)\n", f.src, f.dst, f.message, f.code))
  end
  for _, e in ipairs(summary.errors) do
    out:write(string.format("failed: %s (%s)\n", e.message, e.code))
  end
  out:write(string.format(
    "%d %s replicated, %d up to date, %d failed; %s in %d blobs (%d skipped, %d mounted) in %.1f s%s%s\n",
    summary.images_replicated, summary.images_replicated == 1 and "image" or "images",
    summary.images_up_to_date, summary.images_failed,
    progress.human(summary.bytes_transferred), summary.blobs_copied, summary.blobs_skipped,
    summary.blobs_mounted, summary.duration_seconds,
    (summary.tags_deleted or 0) > 0 and string.format("; %d tags deleted (prune)", summary.tags_deleted) or "",
    summary.interrupted and "; interrupted (resumable)" or ""))
end

return M
