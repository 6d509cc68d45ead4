--- freightliner.filters: which repositories and tags to copy.
--
--   filters.tag_selector(rules [, opts]) -> select | nil, message, "INVALID"
--     rules = { include = {globs}, exclude = {globs}, regex = RE,
--               exclude_regex = RE, semver = "range", include_prerelease,
--               latest = N, latest_by = "semver" | "created",
--               digests = {"sha256:..."} }
--     RE: a PCRE2 regular expression (core.regex: \d, \w, (?i), non-greedy),
--       searched, not anchored: write ^...$ to match the whole tag.
--     opts.created_many = function(repo, tags) -> { [tag] = time },
--       { [tag] = message } (replicate.plan gives one that reads each
--       image's config blob), or opts.created = function(repo, tag) ->
--       time | nil, message; time: seconds since the epoch or an RFC 3339
--       string such as a config's `created`. Needed for latest_by created.
--     select(repo, tags) -> kept, skipped, digests, stats
--       kept: the selected tags in the order given; skipped: { {tag=,
--       rule= "tags.include" | ..., reason=} }; digests: the pinned digests
--       (copied by digest); stats: { {rule=, seen=, passed=} } in order.
--   filters.check_rules(rules) -> { {field=, index=, message=} } (empty: ok)
--   filters.check_glob(glob)   -> true | nil, message
--   filters.repository_selector(spec) -> match(repo) -> bool | nil, msg, code
--     spec: a glob string, or { glob | pattern = GLOB, regex = ERE,
--     list = {repos}, exclude = {globs} }
--
-- freightliner.replicate.plan is the pipeline that uses these (with the
-- policy hooks and freightliner.naming); there is no second one.
--
-- Order: include globs (any; none given = every tag), exclude globs, regex,
-- exclude_regex, the semver range, then latest N of what is left. Pre-
-- releases are left out of semver ranges and of latest-N unless
-- include_prerelease is set. Tags that are not versions are dropped by a
-- semver range and by latest-N by semver. With digests and no include,
-- regex, semver or latest rule, only the pinned digests are selected.

local core = require("freightliner.core")
local semver = require("freightliner.semver")

local M = {}

--- Check a glob for mistakes fnmatch(3) would silently accept.
function M.check_glob(g)
  if type(g) ~= "string" then
    return nil, string.format("a glob must be a string, not a %s", type(g))
  end
  if g == "" then return nil, "empty glob" end
  local i, n = 1, #g
  while i <= n do
    local c = g:sub(i, i)
    if c == "\\" then
      if i == n then return nil, string.format("glob '%s' ends with a lone '\\'", g) end
      i = i + 2
    elseif c == "[" then
      local j = i + 1
      if g:sub(j, j) == "!" or g:sub(j, j) == "^" then j = j + 1 end
      if g:sub(j, j) == "]" then j = j + 1 end -- a leading ']' is literal
      local close = g:find("]", j, true)
      if not close then return nil, string.format("unbalanced '[' in glob '%s'", g) end
      i = close + 1
    elseif c == "]" then
      return nil, string.format("unbalanced ']' in glob '%s'", g)
    else
      i = i + 1
    end
  end
  return true
end

local function check_regex(re)
  if type(re) ~= "string" then
    return nil, string.format("a regular expression must be a string, not a %s", type(re))
  end
  if re == "" then return nil, "empty regular expression" end
  local r, err, _, offset = core.regex.compile(re)
  if not r then return nil, err, offset end
  return r
end
M.check_regex = check_regex

local function as_list(v)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  return v
end

--- Problems with a rules table: { {field=, index=, message=} }.
function M.check_rules(rules)
  local problems = {}
  local function add(field, index, msg)
    problems[#problems + 1] = { field = field, index = index, message = msg }
  end
  if type(rules) ~= "table" then
    add(nil, nil, "tag rules must be a table")
    return problems
  end
  for _, field in ipairs({ "include", "exclude" }) do
    local v = rules[field]
    if v ~= nil and type(v) ~= "string" and type(v) ~= "table" then
      add(field, nil, string.format("%s must be a glob or a list of globs", field))
    else
      for i, g in ipairs(as_list(v)) do
        local ok, err = M.check_glob(g)
        if not ok then add(field, i, err) end
      end
    end
  end
  for _, field in ipairs({ "regex", "exclude_regex" }) do
    if rules[field] ~= nil then
      local ok, err = check_regex(rules[field])
      if not ok then add(field, nil, err) end
    end
  end
  if rules.semver ~= nil then
    local ok, err = semver.range(rules.semver)
    if not ok then add("semver", nil, err) end
  end
  if rules.latest ~= nil and (math.type(rules.latest) ~= "integer" or rules.latest < 1) then
    add("latest", nil, string.format("latest must be a whole number >= 1, got %s", tostring(rules.latest)))
  end
  if rules.latest_by ~= nil and rules.latest_by ~= "semver" and rules.latest_by ~= "created" then
    add("latest_by", nil, string.format("latest_by must be 'semver' or 'created', got '%s'",
      tostring(rules.latest_by)))
  end
  if rules.include_prerelease ~= nil and type(rules.include_prerelease) ~= "boolean" then
    add("include_prerelease", nil, "include_prerelease must be true or false")
  end
  if rules.digests ~= nil and type(rules.digests) ~= "table" then
    add("digests", nil, "digests must be a list of digests")
  else
    for i, d in ipairs(rules.digests or {}) do
      if type(d) ~= "string" then
        add("digests", i, "a digest must be a string like sha256:<64 hex>")
      else
        local ok, err = core.digest.parse(d)
        if not ok then add("digests", i, err) end
      end
    end
  end
  return problems
end

-- Seconds since the epoch from a number or an RFC 3339 time (UTC or with
-- an offset); nil if it is neither.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

function M.timestamp(v)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  local y, mo, d, h, mi, s, frac, zone = v:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  local t = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
  if frac ~= "" and frac ~= "." then t = t + tonumber("0" .. frac) end
  if zone == "Z" or zone == "z" or zone == "" then return t end
  local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then return nil end
  local off = tonumber(zh) * 3600 + tonumber(zm) * 60
  return sign == "+" and t - off or t + off
end

--- Build a tag selector (see the module comment).
function M.tag_selector(rules, opts)
  rules = rules or {}
  opts = opts or {}
  local problems = M.check_rules(rules)
  if #problems > 0 then
    local p = problems[1]
    return nil, (p.field and ("tags." .. p.field .. ": ") or "") .. p.message, "INVALID"
  end
  local include, exclude = as_list(rules.include), as_list(rules.exclude)
  local regex = rules.regex and core.regex.compile(rules.regex)
  local exclude_regex = rules.exclude_regex and core.regex.compile(rules.exclude_regex)
  local pre = rules.include_prerelease or false
  local range = rules.semver and semver.range(rules.semver, { include_prerelease = pre })
  local latest, by = rules.latest, rules.latest_by or "semver"
  if latest and by == "created" and type(opts.created) ~= "function"
    and type(opts.created_many) ~= "function" then
    return nil, "latest_by = 'created' needs a lookup of image creation times (opts.created or "
      .. "opts.created_many; replicate.plan provides one)", "INVALID"
  end
  local digests = {}
  for i, d in ipairs(rules.digests or {}) do digests[i] = d end
  local only_pins = #digests > 0 and #include == 0 and not regex and not range and not latest

  -- The rules in the order they apply: name (as in the sync file), and a
  -- test(tag) -> nil (passes) | reason (drops it).
  local chain = {}
  local function rule(name, test) chain[#chain + 1] = { name = name, test = test } end
  if only_pins then
    rule("tags.digests", function() return "only the pinned digests are selected" end)
  end
  if #include > 0 then
    rule("tags.include", function(tag)
      for _, g in ipairs(include) do
        if core.glob(g, tag) then return nil end
      end
      return string.format("not matched by include filter%s '%s'", #include > 1 and "s" or "",
        table.concat(include, "', '"))
    end)
  end
  if #exclude > 0 then
    rule("tags.exclude", function(tag)
      for _, g in ipairs(exclude) do
        if core.glob(g, tag) then return string.format("excluded by '%s'", g) end
      end
    end)
  end
  if regex then
    rule("tags.regex", function(tag)
      if not regex:match(tag) then return string.format("does not match regex '%s'", rules.regex) end
    end)
  end
  if exclude_regex then
    rule("tags.exclude_regex", function(tag)
      if exclude_regex:match(tag) then return string.format("excluded by regex '%s'", rules.exclude_regex) end
    end)
  end
  if range then
    rule("tags.semver", function(tag)
      if not semver.parse(tag) then
        return string.format("not a semantic version (semver range '%s')", rules.semver)
      end
      if not range:test(tag) then
        return string.format("outside semver range '%s'", rules.semver)
      end
    end)
  end

  -- creation times of candidates: { [tag] = seconds }, { [tag] = message }
  local function creation_times(repo, candidates)
    if opts.created_many then return opts.created_many(repo, candidates) end
    local times, errs = {}, {}
    for _, tag in ipairs(candidates) do
      local when, err = opts.created(repo, tag)
      times[tag], errs[tag] = when, err
    end
    return times, errs
  end

  -- latest N by semver or by creation time; returns the set of tags kept.
  -- Ties (equal versions such as v1.0 and 1.0.0, or equal times) are broken
  -- by the tag itself, the greater string first, so the choice never
  -- depends on the order the registry listed them in.
  local function newest(repo, candidates, skipped)
    local ranked = {}
    local times, errs
    if by == "created" then times, errs = creation_times(repo, candidates) end
    for _, tag in ipairs(candidates) do
      if by == "semver" then
        local v = semver.parse(tag)
        if not v then
          skipped[#skipped + 1] = { tag = tag, rule = "tags.latest",
            reason = string.format("not a semantic version (latest %d)", latest) }
        elseif v:is_prerelease() and not pre then
          skipped[#skipped + 1] = { tag = tag, rule = "tags.latest", reason = string.format(
            "pre-release (latest %d; set include_prerelease to count it)", latest) }
        else
          ranked[#ranked + 1] = { tag = tag, key = v }
        end
      else
        local t = M.timestamp(times[tag])
        if not t then
          local err = errs and errs[tag]
          skipped[#skipped + 1] = { tag = tag, rule = "tags.latest", reason = string.format(
            "creation time unknown (latest %d by created)%s", latest, err and (": " .. tostring(err)) or "") }
        else
          ranked[#ranked + 1] = { tag = tag, key = t }
        end
      end
    end
    table.sort(ranked, function(a, b)
      local c
      if by == "semver" then
        c = semver.compare(a.key, b.key)
      else
        c = a.key < b.key and -1 or (a.key > b.key and 1 or 0)
      end
      if c ~= 0 then return c > 0 end
      return a.tag > b.tag
    end)
    local keep = {}
    for i, r in ipairs(ranked) do
      if i <= latest then
        keep[r.tag] = true
      else
        skipped[#skipped + 1] = { tag = r.tag, rule = "tags.latest", reason = string.format(
          "not among the latest %d%s", latest, by == "created" and " by creation time" or "") }
      end
    end
    return keep
  end

  -- select(repo, tags) -> kept, skipped, digests, stats; stats: one
  -- { rule =, seen =, passed = } per rule, in order (what each rule saw and
  -- let through), for explaining a selection and warning about a rule that
  -- selects nothing.
  return function(repo, tags)
    local skipped, candidates = {}, {}
    local stats = {}
    for i, r in ipairs(chain) do stats[i] = { rule = r.name, seen = 0, passed = 0 } end
    for _, tag in ipairs(tags) do
      local why
      for i, r in ipairs(chain) do
        stats[i].seen = stats[i].seen + 1
        why = r.test(tag)
        if why then
          skipped[#skipped + 1] = { tag = tag, rule = r.name, reason = why }
          break
        end
        stats[i].passed = stats[i].passed + 1
      end
      if not why then candidates[#candidates + 1] = tag end
    end
    local kept = candidates
    if latest then
      local keep = newest(repo, candidates, skipped)
      kept = {}
      for _, tag in ipairs(candidates) do
        if keep[tag] then kept[#kept + 1] = tag end
      end
      stats[#stats + 1] = { rule = "tags.latest", seen = #candidates, passed = #kept }
    end
    return kept, skipped, digests, stats
  end
end

--- A repository matcher (see the module comment).
function M.repository_selector(spec)
  if type(spec) == "string" then spec = { glob = spec } end
  if type(spec) ~= "table" then
    return nil, "a repository selector must be a glob or a table", "INVALID"
  end
  local glob = spec.glob or spec.pattern
  local regex, err
  if glob then
    local ok, gerr = M.check_glob(glob)
    if not ok then return nil, gerr, "INVALID" end
  end
  if spec.regex then
    regex, err = check_regex(spec.regex)
    if not regex then return nil, err, "INVALID" end
  end
  for _, g in ipairs(as_list(spec.exclude)) do
    local ok, gerr = M.check_glob(g)
    if not ok then return nil, gerr, "INVALID" end
  end
  local list
  if spec.list then
    list = {}
    for _, r in ipairs(as_list(spec.list)) do list[r] = true end
  end
  return function(repo)
    if list and not list[repo] then return false end
    if glob and not core.glob(glob, repo) then return false end
    if regex and not regex:match(repo) then return false end
    for _, g in ipairs(as_list(spec.exclude)) do
      if core.glob(g, repo) then return false end
    end
    return true
  end
end

return M
