--- freightliner.config: the YAML sync file: load, validate, normalise.
--
--   config.load(path [, opts])            -> plan | nil, problems
--   config.parse(text, filename [, opts]) -> plan | nil, problems
--       opts.env: variables for ${VAR} (a table or function; default
--       os.getenv); opts.base_dir: where relative paths start (default:
--       the directory of the file).
--       problems: { {line=, column=, message=} } sorted by position (line
--       and column are nil for a file that cannot be read).
--   config.format_problem(path, problem) -> "PATH:LINE:COLUMN: message"
--
-- The plan (what the runner needs, all names resolved):
--   { path, version = 1, defaults = {...},
--     registries = { NAME = { name, host, options } },
--     registry_options = { [host] = options for fl.registry / fl.copy },
--     entries = { { source = host, destination = host, repositories = {...}
--       | pattern = GLOB | regex = ERE, tags = {filter rules}, dest_prefix,
--       dest_template, platforms, referrers, policy = absolute path,
--       verify = { keys = { absolute paths }, require = "any" | "all" },
--       line = N } },
--     parallel = N }
--
-- The file (version 1; tests/lua/data/config/good.yaml is a full example):
--   version: 1
--   defaults: {parallel, platforms, referrers,
--              retry: {max_attempts, base_ms, max_ms},
--              rate_limit: {requests_per_second, max_concurrency, min_remaining}}
--   registries: {NAME: {host (required), insecure, chunk_size ("8MiB"),
--                resume_chunk_size ("32MiB"; 0 = no resumable uploads),
--                max_concurrency, requests_per_second,
--                tls: {ca_file, client_cert, client_key, verify, pinned_pubkey},
--                credentials: {username, password_env, password_file,
--                              credential_helper}}}
--   sync: [{source: {registry: NAME or host, repository: R or [R...] |
--                    repository_pattern: GLOB | repository_regex: ERE},
--           destination: {registry, prefix | template},
--           tags: {include, exclude, regex, exclude_regex, semver, latest,
--                  latest_by, include_prerelease, digests},
--           platforms: [os/arch[/variant]], referrers, policy: FILE.lua,
--           prune: true, prune_max: N}]
-- Strings may use ${VAR} and ${VAR:-default}. Relative paths (policy,
-- tls files, password_file) start at the file's directory. A `password:`
-- key anywhere is refused.

local core = require("freightliner.core")
local S = require("freightliner.schema")
local interpolate = require("freightliner.interpolate")
local filters = require("freightliner.filters")
local semver = require("freightliner.semver")
local naming = require("freightliner.naming")
local registry = require("freightliner.registry")

local M = {}

M.PASSWORD_MESSAGE = "plain-text passwords are not allowed; use password_env or password_file"

-- ---- value checks ---------------------------------------------------------

local function glob_check(v)
  local ok, err = filters.check_glob(v)
  if not ok then return err end
end

local function regex_check(v)
  local ok, err, offset = filters.check_regex(v)
  if not ok then return err, offset end
end

local function semver_check(v)
  local ok, err = semver.range(v)
  if not ok then return err end
end

local function template_check(v)
  local ok, err = naming.check_template(v)
  if not ok then return err end
end

local function prefix_check(v)
  local ok, err = naming.check_prefix(v)
  if not ok then return err end
end

-- Tag keys that do nothing without another: refused, not ignored.
local function tag_rules_check(_, raw)
  if raw.latest_by ~= nil and raw.latest == nil then
    return "latest_by needs latest: N (the number of newest tags to keep)", "latest_by"
  end
  if raw.include_prerelease ~= nil and raw.semver == nil and raw.latest == nil then
    return "include_prerelease has an effect only with semver or latest", "include_prerelease"
  end
end

local function digest_check(v)
  local ok, err = core.ref.check_digest(v)
  if not ok then return err end
end

local function platform_check(v)
  if not v:match("^[a-z0-9]+/[a-z0-9_]+$") and not v:match("^[a-z0-9]+/[a-z0-9_]+/[a-z0-9]+$") then
    return string.format("'%s' is not a platform (expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8)", v)
  end
end

local function host_check(v)
  local ok, err = registry.parse_spec(v)
  if not ok then return err end
end

local function repository_check(v)
  local ok, err = core.ref.check_repository(v)
  if not ok then return err end
end

-- (checks of a whole mapping get the checked value and the raw one)
local function exactly_one_source(_, raw)
  local n = 0
  for _, k in ipairs({ "repository", "repository_pattern", "repository_regex" }) do
    if raw[k] ~= nil and raw[k] ~= core.yaml.null then n = n + 1 end
  end
  if n == 0 then return "give one of repository, repository_pattern or repository_regex" end
  if n > 1 then return "give only one of repository, repository_pattern or repository_regex" end
end

local function prefix_or_template(_, raw)
  if raw.prefix ~= nil and raw.template ~= nil then
    return "give a prefix or a template, not both", "template"
  end
end

-- ---- the schema -----------------------------------------------------------

local platforms = S.list(S.string{ check = platform_check }, { scalar_ok = true })

local SPEC = S.map({
  version = S.integer{ check = function(v)
    if v ~= 1 then return string.format("unsupported version %d (this freightliner reads version 1)", v) end
  end },
  defaults = S.map({
    parallel = S.integer{ min = 1 },
    platforms = platforms,
    referrers = S.boolean(),
    retry = S.map({
      max_attempts = S.integer{ min = 1 },
      base_ms = S.integer{ min = 0 },
      max_ms = S.integer{ min = 0 },
    }),
    rate_limit = S.map({
      requests_per_second = S.number{ above = 0 },
      max_concurrency = S.integer{ min = 1 },
      min_remaining = S.integer{ min = 0 },
    }),
  }),
  registries = S.dict(S.map({
    host = S.string{ required = true, check = host_check },
    insecure = S.boolean(),
    tls = S.map({
      ca_file = S.string(), client_cert = S.string(), client_key = S.string(),
      verify = S.boolean(), pinned_pubkey = S.string(),
    }),
    credentials = S.map({
      username = S.string(), password_env = S.string(), password_file = S.string(),
      credential_helper = S.string(),
    }),
    max_concurrency = S.integer{ min = 1 },
    requests_per_second = S.number{ above = 0 },
    chunk_size = S.size(),
    resume_chunk_size = S.size{ min = 0 },
    max_list_pages = S.integer{ min = 1 },
    max_list_entries = S.integer{ min = 1 },
    auth_realm_strict = S.boolean(),
    auth_realms = S.list(S.string(), { scalar_ok = true }),
  })),
  sync = S.list(S.map({
    source = S.map({
      registry = S.string{ required = true },
      repository = S.list(S.string{ check = repository_check }, { scalar_ok = true }),
      repository_pattern = S.string{ check = glob_check },
      repository_regex = S.string{ check = regex_check },
    }, { required = true, check = exactly_one_source }),
    destination = S.map({
      registry = S.string{ required = true },
      prefix = S.string{ check = prefix_check },
      template = S.string{ check = template_check },
    }, { required = true, check = prefix_or_template }),
    tags = S.map({
      include = S.list(S.string{ check = glob_check }, { scalar_ok = true }),
      exclude = S.list(S.string{ check = glob_check }, { scalar_ok = true }),
      regex = S.string{ check = regex_check },
      exclude_regex = S.string{ check = regex_check },
      semver = S.string{ check = semver_check },
      latest = S.integer{ min = 1 },
      latest_by = S.string{ check = function(v)
        if v ~= "semver" and v ~= "created" then
          return string.format("expected 'semver' or 'created', got '%s'", v)
        end
      end },
      include_prerelease = S.boolean(),
      digests = S.list(S.string{ check = digest_check }, { scalar_ok = true }),
    }, { check = tag_rules_check }),
    platforms = platforms,
    referrers = S.boolean(),
    policy = S.string(),
    prune = S.boolean(),
    prune_max = S.integer{ min = 0 },
    verify = S.map({
      keys = S.list(S.string(), { scalar_ok = true, required = true }),
      require = S.string{ check = function(v)
        if v ~= "any" and v ~= "all" then return string.format("expected 'any' or 'all', got '%s'", v) end
      end },
    }),
    -- serve: entry name and when it runs (freightliner.schedule)
    name = S.string{ check = function(v) return require("freightliner.schedule").check_name(v) end },
    interval = S.string{ check = function(v) return require("freightliner.schedule").check_interval(v) end },
    schedule = S.string{ check = function(v) return require("freightliner.schedule").check_cron(v) end },
  }, { check = function(_, raw)
    if raw.prune_max ~= nil and raw.prune ~= true then
      return "prune_max needs prune: true", "prune_max"
    end
  end })),
})
M.SPEC = SPEC

-- ---- loading --------------------------------------------------------------

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function absolute(base, p)
  if p:sub(1, 1) == "/" then return p end
  if base == "." then
    local cwd = os.getenv("PWD")
    if cwd and cwd ~= "" then return cwd .. "/" .. p end
    return p
  end
  return base .. "/" .. p
end

-- Every literal `password:` key, wherever it is.
local function find_passwords(doc, positions, problems)
  local seen = {}
  local function walk(t)
    if seen[t] then return end
    seen[t] = true
    for k, v in pairs(t) do
      if k == "password" then
        local p = positions[t] and positions[t].keys[k] or {}
        problems[#problems + 1] = { line = p.line, column = p.column, message = M.PASSWORD_MESSAGE }
      end
      if type(v) == "table" then walk(v) end
    end
  end
  walk(doc)
end

local function looks_like_host(s)
  return s == "localhost" or s:find("[.:]") ~= nil or s:match("^oci:") ~= nil
end

-- fl.registry options for one registries: entry, with the defaults.
local function registry_options(r, defaults, base)
  local o = {}
  local retry = defaults.retry or {}
  o.max_attempts, o.retry_base_ms, o.retry_max_ms = retry.max_attempts, retry.base_ms, retry.max_ms
  local rate = defaults.rate_limit or {}
  o.requests_per_second, o.max_concurrency = rate.requests_per_second, rate.max_concurrency
  o.min_remaining = rate.min_remaining
  if not r then return o end
  if r.insecure then o.insecure = true end
  local tls = r.tls or {}
  o.ca_file = tls.ca_file and absolute(base, tls.ca_file)
  o.client_cert = tls.client_cert and absolute(base, tls.client_cert)
  o.client_key = tls.client_key and absolute(base, tls.client_key)
  if tls.verify ~= nil then o.tls_verify = tls.verify end
  o.pinned_pubkey = tls.pinned_pubkey
  local c = r.credentials or {}
  o.username, o.password_env, o.credential_helper = c.username, c.password_env, c.credential_helper
  o.password_file = c.password_file and absolute(base, c.password_file)
  o.max_concurrency = r.max_concurrency or o.max_concurrency
  o.requests_per_second = r.requests_per_second or o.requests_per_second
  o.chunk_size = r.chunk_size
  o.resume_chunk_size = r.resume_chunk_size
  o.max_list_pages, o.max_list_entries = r.max_list_pages, r.max_list_entries
  o.auth_realm_strict, o.auth_realms = r.auth_realm_strict, r.auth_realms
  return o
end

-- The sync entries of the plan; a source or destination registry is a name
-- from registries: or a host.
local function entries_of(value, doc, positions, plan, base, problems)
  local function pos_of(t, k)
    local p = t and positions[t]
    if not p then return {} end
    return p.values[k] or p
  end
  -- every name defined, valid or not (an invalid one is reported already)
  local names, defined = {}, {}
  for n in pairs(type(doc.registries) == "table" and doc.registries or {}) do
    if type(n) == "string" then
      names[#names + 1] = n
      defined[n] = true
    end
  end
  table.sort(names)
  local raw = doc.sync
  for i, e in ipairs(value.sync or {}) do
    local re = type(raw) == "table" and raw[i] or nil
    local src, dst = e.source or {}, e.destination or {}
    local entry = { line = (positions[re] or {}).line }
    for side, spec in pairs({ source = src, destination = dst }) do
      local r = spec.registry
      if r and plan.registries[r] then
        entry[side] = plan.registries[r].host
        entry[side .. "_name"] = r
      elseif r and looks_like_host(r) and not defined[r] then
        entry[side] = r
      elseif r and not defined[r] then
        local hint = S.closest(r, names)
        local p = pos_of(type(re) == "table" and re[side] or nil, "registry")
        problems[#problems + 1] = { line = p.line, column = p.column, message = string.format(
          "sync[%d].%s.registry: unknown registry '%s'%s (%s)", i, side, r,
          hint and ("; did you mean '" .. hint .. "'?") or "",
          #names > 0 and ("defined: " .. table.concat(names, ", ")) or "no registries are defined") }
      end
    end
    entry.repositories = src.repository
    entry.pattern = src.repository_pattern
    entry.regex = src.repository_regex
    entry.dest_prefix = dst.prefix
    entry.dest_template = dst.template
    entry.tags = e.tags or {}
    entry.name, entry.interval, entry.schedule = e.name, e.interval, e.schedule
    entry.platforms = e.platforms or plan.defaults.platforms
    if e.referrers ~= nil then entry.referrers = e.referrers else entry.referrers = plan.defaults.referrers end
    entry.prune, entry.prune_max = e.prune, e.prune_max
    if e.verify then
      -- key files are relative to the sync file, like policy files
      local keys = {}
      for k, key in ipairs(e.verify.keys or {}) do
        keys[k] = absolute(base, key)
        local exists, kind = core.fs.exists(keys[k])
        if not exists or kind ~= "file" then
          local p = pos_of(re, "verify")
          problems[#problems + 1] = { line = p.line, column = p.column, message = string.format(
            "sync[%d].verify.keys: key file '%s' not found (looked for %s)", i, key, keys[k]) }
        end
      end
      entry.verify = { keys = keys, require = e.verify.require or "any" }
    end
    if e.policy then
      entry.policy = absolute(base, e.policy)
      local exists, kind = core.fs.exists(entry.policy)
      if not exists or kind ~= "file" then
        local p = pos_of(re, "policy")
        problems[#problems + 1] = { line = p.line, column = p.column, message = string.format(
          "sync[%d].policy: policy file '%s' not found (looked for %s)", i, e.policy, entry.policy) }
      end
    end
    plan.entries[#plan.entries + 1] = entry
  end
end

--- Validate and normalise a sync file's text (see the module comment).
function M.parse(text, filename, opts)
  opts = opts or {}
  filename = filename or "<config>"
  local base = opts.base_dir or dirname(filename)
  local doc, positions = core.yaml.load(text, filename)
  if doc == nil then
    local line, col, msg = positions:match("^.-:(%d+):(%d+): (.*)$")
    return nil, { { line = tonumber(line), column = tonumber(col), message = msg or positions } }
  end
  if doc == core.yaml.null then doc = {} end
  if type(doc) ~= "table" or (#doc > 0) then
    return nil, { { line = 1, column = 1, message = string.format(
      "the top level must be a mapping (version, defaults, registries, sync), got %s", S.describe(doc)) } }
  end
  local problems, changed, failed = interpolate.document(doc, positions, opts.env)
  find_passwords(doc, positions, problems)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  local value, more = S.validate(doc, SPEC, positions,
    { interpolated = changed, skip = failed, ignore_keys = { password = true }, lines = lines })
  for _, p in ipairs(more) do problems[#problems + 1] = p end
  value = value or {}

  local defaults = value.defaults or {}
  local plan = {
    path = filename, version = value.version or 1,
    defaults = {
      parallel = defaults.parallel or core.defaults.workers, platforms = defaults.platforms,
      referrers = defaults.referrers or false,
      retry = defaults.retry or {}, rate_limit = defaults.rate_limit or {},
    },
    registries = {}, registry_options = {}, entries = {},
  }
  plan.parallel = plan.defaults.parallel
  for name, r in pairs(value.registries or {}) do
    if r.host then
      local o = registry_options(r, plan.defaults, base)
      plan.registries[name] = { name = name, host = r.host, options = o }
      plan.registry_options[r.host] = o
    end
  end
  entries_of(value, doc, positions, plan, base, problems)
  -- hosts named directly in sync entries get the defaults too
  for _, e in ipairs(plan.entries) do
    for _, host in ipairs({ e.source, e.destination }) do
      if host and not plan.registry_options[host] then
        plan.registry_options[host] = registry_options(nil, plan.defaults, base)
      end
    end
  end
  if #problems > 0 then return nil, S.sort(problems) end
  return plan
end

--- Read and validate a sync file.
function M.load(path, opts)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, { { message = string.format("cannot read the config file: %s", err) } }
  end
  local text = f:read("a")
  f:close()
  return M.parse(text, path, opts)
end

function M.format_problem(path, p)
  if p.line then return string.format("%s:%d:%d: %s", path, p.line, p.column or 1, p.message) end
  return string.format("%s: %s", path, p.message)
end

--- A runner job (see freightliner.runner) from a plan; overrides win.
function M.job(plan, overrides)
  local job = {
    registries = plan.registry_options, entries = plan.entries, parallel = plan.parallel,
    config = plan.path,
  }
  for k, v in pairs(overrides or {}) do job[k] = v end
  return job
end

return M
