--- freightliner.prune: delete destination tags that the source no longer
-- has or the rules no longer select, with guardrails.
--
--   local p = prune.plan(plan, dst, { max = N })  -> prune plan | nil, msg, CODE
--   local deleted, failures = prune.apply(p, dst)
--
-- plan: a replicate.plan result (its scope and wanted sets); dst: the
-- destination registry object (freightliner.registry).
--
-- opts: max (prune_max), force (--force-prune), parallel, also_wanted
-- (what other entries of the run want at the same destination).
--
-- Guardrails (README, "Prune"):
--   * scope: only repositories of the entry's destination scope, i.e. the
--     names the entry's naming gives for the source repositories it listed
--     successfully; a source repository whose tags could not be listed is
--     not pruned at all, and nothing outside the scope is listed or touched.
--   * a tag is deleted only when the entry wants no image at that
--     destination tag.
--   * at most `max` deletions per entry (default: the larger of 10% of the
--     tags in scope, rounded up, and 20); more than that and the entry
--     prunes nothing (refused; --force-prune lifts the limit).
--   * delete by tag where the registry supports it; else by digest, and
--     only when no tag that stays names that manifest (deleting a digest
--     removes every tag on it).
-- Every deletion is returned for logging and counting (tags_deleted).

local core = require("freightliner.core")

local M = {}

--- The default limit for `total` tags in scope: max(ceil(10%), 20).
function M.default_max(total)
  return math.max(20, (total + 9) // 10)
end

--- What pruning this plan would delete. Returns { entry, deletions = {
-- {repository, tag, digest, reason} }, kept = { {repository, tag,
-- reason} }, total = tags in scope, max, refused = message | nil }.
function M.plan(plan, dst, opts)
  opts = opts or {}
  local out = { entry = plan.explain and plan.explain.label or plan.destination, deletions = {}, kept = {},
                total = 0, errors = {} }
  local repos = {}
  for r in pairs(plan.scope or {}) do repos[#repos + 1] = r end
  table.sort(repos)
  -- what this entry wants, plus what other entries of the same run want
  -- at the same destination (opts.also_wanted[repo][tag]): one entry never
  -- prunes another's tags
  local wanted_of = {}
  for _, source in ipairs({ plan.wanted, opts.also_wanted or {} }) do
    for repo, tags in pairs(source) do
      wanted_of[repo] = wanted_of[repo] or {}
      for t in pairs(tags) do wanted_of[repo][t] = true end
    end
  end
  if dst.kind == "oci" and #repos > 0 then
    -- a layout has one tag namespace for every "repository": prune it once,
    -- keeping every tag any repository wants
    local all = {}
    for _, tags in pairs(wanted_of) do
      for t in pairs(tags) do all[t] = true end
    end
    repos = { repos[1] }
    wanted_of = { [repos[1]] = all }
  end
  local listed, failed = dst:tags_many(repos, { concurrency = opts.parallel or core.defaults.workers })
  local per_repo = {}
  for _, repo in ipairs(repos) do
    local tags = listed[repo]
    if tags then
      out.total = out.total + #tags
      local wanted = wanted_of[repo] or {}
      local go = {}
      for _, tag in ipairs(tags) do
        if not wanted[tag] then go[#go + 1] = tag end
      end
      table.sort(go)
      if #go > 0 then per_repo[#per_repo + 1] = { repo = repo, tags = tags, go = go } end
    elseif failed[repo].code ~= "NOT_FOUND" then
      out.errors[#out.errors + 1] = { message = string.format("listing %s/%s for prune: %s",
        plan.destination, repo, failed[repo].message), code = failed[repo].code }
    end
  end
  -- the digest of every tag of a repository with something to delete, so a
  -- manifest another (staying) tag names is never deleted by digest, and
  -- the signatures of a staying image (cosign tags sha256-<hex>.sig) stay
  local count = 0
  for _, r in ipairs(per_repo) do
    local going, stays = {}, {}
    r.digest_of = {}
    for _, tag in ipairs(r.go) do going[tag] = true end
    for _, tag in ipairs(r.tags) do
      local head = dst.ep:manifest_head(r.repo, tag)
      r.digest_of[tag] = head and head.digest
      if not going[tag] and head then stays[head.digest] = stays[head.digest] or tag end
    end
    local go = {}
    for _, tag in ipairs(r.go) do
      local subject = tag:match("^sha256%-(%x+)")
      if subject and stays["sha256:" .. subject] then
        out.kept[#out.kept + 1] = { repository = r.repo, tag = tag,
          reason = "refers to " .. "sha256:" .. subject .. ", which stays" }
      else
        go[#go + 1] = tag
      end
    end
    r.go, r.stays = go, stays
    count = count + #go
  end
  out.max = opts.max or M.default_max(out.total)
  if count > out.max and not opts.force then
    out.refused = string.format("%s: prune would delete %d of %d tags in scope, over the limit of %d "
      .. "(prune_max); nothing was deleted (use --force-prune, or raise prune_max, if this is intended)",
      out.entry, count, out.total, out.max)
    for _, r in ipairs(per_repo) do
      for _, tag in ipairs(r.go) do
        out.kept[#out.kept + 1] = { repository = r.repo, tag = tag, reason = "over prune_max" }
      end
    end
    return out
  end
  for _, r in ipairs(per_repo) do
    for _, tag in ipairs(r.go) do
      local digest = r.digest_of[tag]
      local shared = digest and r.stays[digest]
      out.deletions[#out.deletions + 1] = { repository = r.repo, tag = tag, digest = digest,
        shared_with = shared,
        reason = "the entry selects no image for this tag (gone from the source, or no longer selected)"
          .. (shared and string.format("; its manifest is also tagged '%s', which stays: deleted only "
            .. "where the registry deletes by tag", shared) or "") }
    end
  end
  return out
end

--- Delete what plan() listed. Returns the deletions done ({repository,
-- tag, digest, how = "tag" | "digest"}), the failures ({repository, tag,
-- message, code}) and the tags a guardrail kept ({repository, tag,
-- reason}).
function M.apply(p, dst)
  local done, failures, kept = {}, {}, {}
  local by_tag = true         -- until the registry says it cannot
  local gone_digests = {}     -- digests deleted already (their tags went with them)
  for _, d in ipairs(p.deletions) do
    local ok, msg, code
    if d.digest and gone_digests[d.digest] then
      done[#done + 1] = { repository = d.repository, tag = d.tag, digest = d.digest, how = "digest" }
    else
      if by_tag then
        ok, msg, code = dst.ep:manifest_delete(d.repository, d.tag)
        if ok then
          done[#done + 1] = { repository = d.repository, tag = d.tag, digest = d.digest, how = "tag" }
        elseif code == "UNSUPPORTED" then
          by_tag = false -- e.g. Distribution 2.x: no deletion by tag
        end
      end
      if not ok and not by_tag then
        if not d.digest then
          msg, code = "no digest for the tag (HEAD failed)", "NOT_FOUND"
        elseif d.shared_with then
          ok = "kept"
          kept[#kept + 1] = { repository = d.repository, tag = d.tag, reason = string.format(
            "manifest %s is also tagged '%s', which stays; this registry deletes only by digest, "
            .. "which would remove both", d.digest, d.shared_with) }
        else
          ok, msg, code = dst.ep:manifest_delete(d.repository, d.digest)
          if ok then
            gone_digests[d.digest] = true
            done[#done + 1] = { repository = d.repository, tag = d.tag, digest = d.digest, how = "digest" }
          end
        end
      end
      if not ok then
        failures[#failures + 1] = { repository = d.repository, tag = d.tag, message = msg, code = code }
      end
    end
  end
  return done, failures, kept
end

return M
