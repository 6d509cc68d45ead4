--- freightliner.shard: split one replication over COUNT processes.
--
--   local s = shard.parse("2/8")            -- { index = 2, count = 8, split_tags = 500 }
--   local s, err = shard.resolve(opts, env) -- from --shard, --shard-count + JOB_COMPLETION_INDEX,
--                                           -- FREIGHTLINER_SHARD; nil when not sharded
--   shard.apply(plan, s)                    -- keep only this shard's part of a plan
--   shard.of(key, count) -> 0 .. count-1    -- FNV-1a 64 of key, modulo count
--
-- The partition: every image of a plan belongs to exactly one shard. An
-- image's key is its source repository name ("team/app", without the
-- registry host), so a repository lives in one shard and its blobs are
-- shared by one process. A repository with more than `split_tags` planned
-- tags is split by tag instead: the key is "team/app:TAG". The shard is
-- FNV-1a 64 of the key's bytes (offset basis 0xcbf29ce484222325, prime
-- 0x100000001b3), taken as an unsigned 64-bit number, modulo COUNT. Every
-- shard computes the same partition from the same source listing, with no
-- coordination; INDEX is 0-based (Kubernetes' JOB_COMPLETION_INDEX).
--
-- A shard plans the whole source (listing is cheap next to copying), then
-- keeps its items, its skipped tags and its listing errors; the checkpoint,
-- the metrics and the summary of a sharded run therefore cover only its
-- part. Expected failures return nil, message (the CLI's usage errors).

local M = {}

--- Tags per repository above which a repository is split by tag.
M.DEFAULT_SPLIT_TAGS = 500

--- Options the replication commands take (added to their specs).
M.flags = {
  { name = "shard", value = true },
  { name = "shard-count", value = true, number = true, min = 1 },
  { name = "shard-split-tags", value = true, number = true, min = 1 },
}

local OFFSET = 0xcbf29ce484222325 -- wraps to a signed integer: the same 64 bits
local PRIME = 0x100000001b3

--- FNV-1a 64 of a string, as a Lua integer (the same 64 bits, signed).
function M.fnv1a64(s)
  local h = OFFSET
  for i = 1, #s do
    h = (h ~ s:byte(i)) * PRIME -- integer multiplication wraps modulo 2^64
  end
  return h
end

--- The shard of `key` among `count`: the unsigned hash modulo count.
function M.of(key, count)
  local h = M.fnv1a64(key)
  -- unsigned h mod count, without overflow: h = 2 * (h >>> 1) + (h & 1)
  return ((h >> 1) % count * 2 + (h & 1)) % count
end

local function whole(s)
  return s and s:match("^%d+$") and math.tointeger(tonumber(s))
end

--- Parse "INDEX/COUNT" (0 <= INDEX < COUNT). Returns the shard table or
-- nil, message.
function M.parse(spec, split_tags)
  local i, c = tostring(spec):match("^%s*(%d+)%s*/%s*(%d+)%s*$")
  i, c = whole(i), whole(c)
  if not i or not c then
    return nil, string.format("shard '%s' is not INDEX/COUNT (e.g. 0/4)", tostring(spec))
  end
  if c < 1 then return nil, string.format("shard '%s': COUNT must be at least 1", spec) end
  if i >= c then
    return nil, string.format("shard '%s': INDEX must be 0 to %d (0-based)", spec, c - 1)
  end
  return { index = i, count = c, split_tags = split_tags or M.DEFAULT_SPLIT_TAGS }
end

--- The shard of a run from parsed options (`shard`, `shard-count`,
-- `shard-split-tags`) and the environment (a function like os.getenv).
-- Precedence: --shard, then --shard-count with JOB_COMPLETION_INDEX, then
-- FREIGHTLINER_SHARD. Returns the shard table, nil (not sharded), or
-- nil, message.
function M.resolve(o, env)
  env = env or os.getenv
  local split = o["shard-split-tags"]
  if o.shard and o["shard-count"] then
    return nil, "--shard INDEX/COUNT and --shard-count COUNT exclude each other"
  end
  if o.shard then return M.parse(o.shard, split) end
  if o["shard-count"] then
    local index = env("JOB_COMPLETION_INDEX")
    if not index or index == "" then
      return nil, "--shard-count needs JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job);"
        .. " elsewhere use --shard INDEX/COUNT"
    end
    if not whole(index) then
      return nil, string.format("JOB_COMPLETION_INDEX '%s' is not a whole number", index)
    end
    return M.parse(index .. "/" .. o["shard-count"], split)
  end
  local from_env = env("FREIGHTLINER_SHARD")
  if from_env and from_env ~= "" then
    local s, err = M.parse(from_env, split)
    if not s then return nil, "FREIGHTLINER_SHARD: " .. err end
    return s
  end
  if split then return nil, "--shard-split-tags needs --shard, --shard-count or FREIGHTLINER_SHARD" end
  return nil
end

-- The repository of an image string host/repo:tag (skipped entries carry
-- only that); the whole string when it has no such shape (OCI layouts).
local function repository_of(src)
  return src:match("^[^/]+/(.+):[^:/]+$") or src
end

--- Keep only this shard's part of a plan (items, skipped, errors), in
-- place. Records plan.shard = { index, count, planned (before), kept,
-- split (repositories split by tag) }. Returns the plan.
function M.apply(plan, s)
  local per_repo = {}
  for _, it in ipairs(plan.items) do
    per_repo[it.repository] = (per_repo[it.repository] or 0) + 1
  end
  local split = {}
  for repo, n in pairs(per_repo) do
    if n > s.split_tags then split[#split + 1] = repo end
  end
  table.sort(split)
  local is_split = {}
  for _, r in ipairs(split) do is_split[r] = true end
  local function mine(key) return M.of(key, s.count) == s.index end

  local items = {}
  for _, it in ipairs(plan.items) do
    local key = is_split[it.repository] and (it.repository .. ":" .. it.tag) or it.repository
    if mine(key) then items[#items + 1] = it end
  end
  local skipped = {}
  for _, sk in ipairs(plan.skipped or {}) do
    if mine(repository_of(sk.src)) then skipped[#skipped + 1] = sk end
  end
  local errors = {}
  for _, e in ipairs(plan.errors or {}) do
    if e.repository == nil or mine(tostring(e.repository)) then errors[#errors + 1] = e end
  end
  plan.shard = { index = s.index, count = s.count, planned = #plan.items, kept = #items,
                 split = split }
  plan.items, plan.skipped, plan.errors = items, skipped, errors
  require("freightliner.core").log.log("info", string.format(
    "shard %d/%d: %d of %d images from %s%s", s.index, s.count, #items, plan.shard.planned,
    tostring(plan.source), #split > 0 and (" (split by tag: " .. table.concat(split, ", ") .. ")") or ""))
  return plan
end

return M
