--- freightliner.replicate: plan and run the replication of many images.
--
--   local plan = replicate.plan{ source = "src:5000", destination = "dst:5000",
--     repositories = { "team/app" } | pattern = "team/*",
--     select_tags = function(repo, tags) return tags, skipped end,
--     dest_prefix = "mirror", hooks = { rename =, filter = }, parallel = 8 }
--   local summary = replicate.run(plan, { parallel = 8, dry_run = false,
--     checkpoint = cp, metrics_file = "m.json", progress = true,
--     copy = { platforms =, referrers = }, hooks = { retry =, on_done =, on_error = },
--     checks = 32, rate_limit = { min_remaining = N } })
--
-- plan() lists what to copy: repositories from the source catalog (or the
-- given list), tags from each repository (listed concurrently, 32 or
-- `parallel` at a time, whichever is more), filtered and renamed by the policy in repository
-- order; items are { key, src, dst, repository, tag, dst_repository,
-- dst_tag }. The source is opened through fl.copy's store cache when its
-- options are the ones fl.copy uses, so the copies reuse that endpoint.
-- run() copies them with fl.parallel, records each image in the
-- checkpoint as it finishes, stops cleanly on SIGINT/SIGTERM, writes the
-- metrics file and returns a summary with the exit status the CLI uses:
-- 0 all done, 1 some images failed, 130/143 interrupted. `checks` images
-- (default 32, at least `parallel`) are in flight at once, so up-to-date
-- checks do not wait for blob workers (each registry's max_concurrency still
-- bounds its requests); before each image, freightliner.budget pauses while
-- the source's pull budget is below min_remaining (the registry's option,
-- else rate_limit.min_remaining).

local core = require("freightliner.core")
local copy = require("freightliner.copy")
local registry = require("freightliner.registry")
local progress = require("freightliner.progress")
local budget = require("freightliner.budget")

local M = {}
local Action

M.CHECKS = 32 -- images in flight by default (see run)
M.BIG_PLAN = 10000 -- items beyond which the collector runs without a pause

local function join(prefix, repo)
  if not prefix or prefix == "" then return repo end
  return (prefix:gsub("/+$", "")) .. "/" .. repo
end

local function image(host, repo, tag)
  if host:match("^oci:") then return host .. ":" .. tag end
  return host .. "/" .. repo .. ":" .. tag
end

-- Why a dry run decided what it did, from its action and detail.
local function reason(action, detail)
  if action == "up to date" then return "destination has digest " .. detail end
  if action == "copy" then return "destination lacks " .. (detail or "it") end
  return detail
end

-- Items hold only what differs from one to the next (repository, tag, and
-- the destination's when renamed); src, dst and key are computed when read,
-- and anything else (copy, hooks) comes from the plan's context: a plan of
-- 100,000 tags stays small (#12). A dry run keeps its decision on the item
-- (two array slots: action, detail), which then reads as an action too.
local function item_class(context)
  return { decisions = true, context = context, __index = function(t, k)
    if k == "action" then
      return rawget(t, 1)
    elseif k == "reason" then
      return reason(rawget(t, 1), rawget(t, 2))
    elseif k == "src" then
      return image(context.source, t.repository, t.tag)
    elseif k == "dst" then
      return image(context.destination, t.dst_repository, t.dst_tag)
    elseif k == "key" then
      return t.src .. " -> " .. t.dst
    elseif k == "dst_repository" then
      return rawget(t, "repository")
    elseif k == "dst_tag" then
      return rawget(t, "tag")
    end
    return context[k]
  end }
end

--- Build the list of images to copy. Returns plan | nil, message, CODE.
-- Each item reads as { key, src, dst, repository, tag, dst_repository,
-- dst_tag }; plan.context holds what all its items share (set copy or hooks
-- there rather than on every item).
function M.plan(p)
  -- fl.copy's endpoint for the source when the options match (one scheme
  -- probe and one token for the listing and the copies), else our own
  local src, msg, code = copy.store(p.source, p.source_options)
  local own = src == false
  if own then src, msg, code = registry.open(p.source, p.source_options) end
  if not src then return nil, msg, code end
  local repos = p.repositories
  if not repos then
    repos, msg, code = src:catalog{ pattern = p.pattern }
    if not repos then
      return nil, string.format("listing repositories of %s: %s", p.source, msg), code
    end
    if p.repository_filter then
      local kept = {}
      for _, r in ipairs(repos) do
        if p.repository_filter(r) then kept[#kept + 1] = r end
      end
      repos = kept
    end
  end
  local plan = { source = p.source, destination = p.destination, items = {}, skipped = {},
                 errors = {}, context = { source = p.source, destination = p.destination } }
  local class = item_class(plan.context)
  local hooks = p.hooks or {}
  -- every repository's tags at once, then the policy in repository order
  local names, uses = {}, {}
  for i, repo in ipairs(repos) do
    names[i] = math.type(repo) and tostring(repo) or repo
    uses[names[i]] = (uses[names[i]] or 0) + 1
  end
  -- as many tag lists in flight as run() has checks (each registry's
  -- max_concurrency still bounds them)
  local listed, failed = src:tags_many(names, { concurrency = math.max(math.tointeger(p.parallel) or 8, M.CHECKS) })
  for i, repo in ipairs(repos) do
    local name = names[i]
    local tags = listed[name]
    if tags and uses[name] > 1 then
      tags = table.move(tags, 1, #tags, 1, {}) -- a repeated repository: each use its own list
    end
    if not tags then
      local e = failed[name]
      plan.errors[#plan.errors + 1] = { repository = repo,
        message = string.format("listing tags of %s/%s: %s", p.source, repo, e.message), code = e.code }
    else
      local selected, skipped = tags, {}
      if p.select_tags then selected, skipped = p.select_tags(repo, tags) end
      for _, s in ipairs(skipped or {}) do
        plan.skipped[#plan.skipped + 1] = { src = image(p.source, repo, s.tag), reason = s.reason }
      end
      for _, tag in ipairs(selected) do
        local keep = true
        if hooks.filter then keep = hooks.filter({ repository = repo, tag = tag, registry = p.source }) end
        if not keep then
          plan.skipped[#plan.skipped + 1] = { src = image(p.source, repo, tag), reason = "policy filter" }
        else
          local dst_repo, dst_tag = join(p.dest_prefix, repo), tag
          if p.rename_prefix then
            local rest = repo:sub(#p.rename_prefix.from + 1):gsub("^/", "")
            dst_repo = join(p.rename_prefix.to, rest)
          end
          if p.dest_template then
            dst_repo = p.dest_template:gsub("{repo}", repo):gsub("{name}", repo:match("[^/]+$"))
              :gsub("{tag}", tag)
          end
          if hooks.rename then
            local r, t = hooks.rename(dst_repo, dst_tag)
            dst_repo, dst_tag = r or dst_repo, t or dst_tag
          end
          local item = setmetatable({ repository = repo, tag = tag }, class)
          if dst_repo ~= repo then item.dst_repository = dst_repo end
          if dst_tag ~= tag then item.dst_tag = dst_tag end
          plan.items[#plan.items + 1] = item
        end
      end
    end
  end
  if own then src:close() end
  return plan
end

-- A dry run's decision on an item of another kind (a table made by the
-- caller), small until read: src, dst, action ("copy", "up to date",
-- "error") and reason.
Action = { __index = function(a, k)
  if k == "src" or k == "dst" then return a[1][k] end
  if k == "action" then return a[2] end
  if k == "reason" then return reason(a[2], a[3]) end
end }

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

-- One image, with the policy's retry hook: retry(err, attempt) -> delay | nil.
local function copy_with_retry(item, copy_opts, hooks)
  local attempt = 1
  while true do
    local r, msg, code = copy.copy(item.src, item.dst, copy_opts)
    if r or not hooks.retry or core.engine.signal() then return r, msg, code end
    local delay = hooks.retry({ message = msg, code = code, image = item.src }, attempt)
    if not delay then return r, msg, code end
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

--- Copy every item of the plan. Returns the summary (see module comment).
function M.run(plan, opts)
  opts = opts or {}
  local hooks = opts.hooks or {}
  local parallel = opts.parallel or 8
  core.engine.trap_signals()
  copy.configure{ workers = parallel }
  local cp = opts.checkpoint
  local display = opts.progress and progress.wanted() and progress.new(#plan.items) or nil
  if display then copy.configure{ progress = display.update } end
  local started = core.now()
  local summary = new_stats()
  summary.repositories, summary.failures, summary.actions = {}, {}, {}
  summary.errors = plan.errors or {}
  summary.planned = #plan.items
  local copy_opts = {}
  for k, v in pairs(opts.copy or {}) do copy_opts[k] = v end
  copy_opts.dry_run = opts.dry_run

  local guard = budget.new{ min_remaining = (opts.rate_limit or {}).min_remaining }
  -- the source store of an item: once per plan context, not per item
  local sources = {}
  local function source_of(item)
    local mt = getmetatable(item)
    if not (mt and mt.decisions) then return copy.resolve(item.src) end
    local s = sources[mt]
    if s == nil then
      s = copy.resolve(item.src) or false
      sources[mt] = s
    end
    return s or nil
  end
  -- a run makes garbage at a steady rate (a result per image) over a live
  -- set that a big plan makes large: then collect as it goes, not at twice it
  local pause = #plan.items > M.BIG_PLAN and collectgarbage("setpause", 100)
  copy.parallel(plan.items, function(item)
    if core.engine.signal() then return end
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
    if core.engine.signal() then
      if probe then guard:probed(source.registry) end
      return
    end
    if cp and not opts.dry_run then cp:mark(item.key, "in_progress") end
    local r, msg, code = copy_with_retry(item, item_opts, item_hooks)
    if probe then guard:probed(source.registry) end
    local repo_stats = summary.repositories[item.repository] or new_stats()
    summary.repositories[item.repository] = repo_stats
    if opts.dry_run then
      -- reads as { src, dst, action, reason } (see item_class, Action)
      local action = r and (r.up_to_date and "up to date" or "copy") or "error"
      local detail = r and (r.up_to_date and r.digest or r.source_digest) or msg
      local mt = getmetatable(item)
      if mt and mt.decisions then
        item[1], item[2] = action, detail
        summary.actions[#summary.actions + 1] = item
      else
        summary.actions[#summary.actions + 1] = setmetatable({ item, action, detail }, Action)
      end
      return
    end
    if r then
      add(summary, r)
      add(repo_stats, r)
      local field = r.up_to_date and "images_up_to_date" or "images_replicated"
      summary[field] = summary[field] + 1
      repo_stats[field] = repo_stats[field] + 1
      if cp then cp:mark(item.key, "done", { digest = r.digest }) end
      if item_hooks.on_done then item_hooks.on_done(r) end
    elseif code == "CANCELLED" and core.engine.signal() then
      if cp then cp:mark(item.key, "pending") end
    else
      summary.images_failed = summary.images_failed + 1
      repo_stats.images_failed = repo_stats.images_failed + 1
      summary.failures[#summary.failures + 1] = { src = item.src, dst = item.dst, message = msg, code = code }
      if cp then cp:mark(item.key, "failed", { error = msg, code = code }) end
      if item_hooks.on_error then
        item_hooks.on_error({ src = item.src, dst = item.dst, message = msg, code = code })
      end
    end
  end, { concurrency = math.max(parallel, opts.checks or M.CHECKS) })

  if display then display.finish() end
  local now = core.now()
  summary.duration_seconds = now - started
  local counters = copy.counters()
  summary.retries = counters.retries
  summary.source_manifest_gets = counters.source_manifest_gets
  summary.interrupted = core.engine.signal() ~= nil
  summary.status = exit_status(summary)
  if cp then cp:compact() end
  if pause then collectgarbage("setpause", pause) end
  return summary
end

--- Print a human summary of a run (or a dry run) to `out`.
function M.print_summary(summary, out)
  out = out or io.stdout
  if summary.actions and #summary.actions > 0 then
    -- by src, without keeping 100,000 strings for it: two items of one
    -- registry source compare by repository, then tag; a line per action
    -- is garbage at once, collected as it goes when there are many
    local pause = #summary.actions > M.BIG_PLAN and collectgarbage("setpause", 100)
    table.sort(summary.actions, function(a, b)
      local ma = getmetatable(a)
      if ma and ma.decisions and ma == getmetatable(b) and not ma.context.source:match("^oci:") then
        local ra, rb = a.repository, b.repository
        if ra == rb then return a.tag < b.tag end
        return ra .. ":" .. a.tag < rb .. ":" .. b.tag
      end
      return a.src < b.src
    end)
    local copies, current = 0, 0
    for _, a in ipairs(summary.actions) do
      out:write(string.format("%-10s %s -> %s (%s)\n", a.action, a.src, a.dst, a.reason))
      if a.action == "copy" then copies = copies + 1 elseif a.action == "up to date" then current = current + 1 end
    end
    out:write(string.format("dry run: %d to copy, %d up to date, %d skipped by filter; nothing was written\n",
      copies, current, summary.skipped or 0))
    if pause then collectgarbage("setpause", pause) end
    return
  end
  for _, f in ipairs(summary.failures) do
    out:write(string.format("failed: %s -> %s: %s (%s)\n", f.src, f.dst, f.message, f.code))
  end
  for _, e in ipairs(summary.errors) do
    out:write(string.format("failed: %s (%s)\n", e.message, e.code))
  end
  out:write(string.format(
    "%d images replicated, %d up to date, %d failed; %s in %d blobs (%d skipped, %d mounted) in %.1f s%s\n",
    summary.images_replicated, summary.images_up_to_date, summary.images_failed,
    progress.human(summary.bytes_transferred), summary.blobs_copied, summary.blobs_skipped,
    summary.blobs_mounted, summary.duration_seconds,
    summary.interrupted and "; interrupted (resumable)" or ""))
end

return M
