--- freightliner.registry: registries and OCI layouts as Lua objects.
--
--   local reg = fl.registry("127.0.0.1:5000", { ca_file = "ca.pem" })
--   local reg = fl.registry("oci:/srv/mirror")
--   reg:ping()                          -> true | nil, msg, CODE
--   reg:catalog{ pattern = "team/*", limit = 100 }
--   reg:tags("team/app")
--   reg:tags_many({ "team/app", "team/web" }, { concurrency = 8 })
--                                       -> { [repo] = tags }, { [repo] = { message, code } }
--   reg:manifest("team/app:v1")        -> { data, digest, media_type, size, parsed }
--   reg:head("team/app:v1")            -> { digest, media_type, size }
--   reg:blob_exists("team/app", digest) -> true, size | false
--   reg:blob("team/app", digest)        -> bytes (small blobs: configs)
--   reg:delete("team/app:v1")        (by tag; where the registry cannot,
--                                       the manifest, with all its tags)
--   reg:referrers("team/app:v1", { artifact_type = "..." })
--   reg:stats()                         -> requests, retries, rate limits
--
-- A spec is "host[:port]", "http://host[:port]" (plain HTTP), "https://..."
-- or "oci:PATH", or an archive "oci-archive:FILE" / "docker-archive:FILE"
-- (opened for reading, or with { write = true } for writing; see
-- src/registry/archive.h). "docker.io" is served from registry-1.docker.io. Loopback
-- hosts may use plain HTTP without being asked (as Docker allows).

local core = require("freightliner.core")
local json = require("freightliner.json")

local M = {}

local Registry = {}
Registry.__index = Registry
Registry.__name = "freightliner.registry"

function Registry:__tostring()
  return "registry (" .. self.spec .. ")"
end

function Registry:__close()
  self:close()
end

--- Parse a registry spec into endpoint options (without opening anything).
-- @return { kind = "registry"|"oci", host=, scheme=, path= } or nil, msg, code
function M.parse_spec(spec)
  if type(spec) ~= "string" or spec == "" then
    return nil, "registry spec must be a non-empty string", "INVALID"
  end
  local path = spec:match("^oci:(.+)$")
  if path then
    return { kind = "oci", path = path }
  end
  local akind, apath = spec:match("^(%a+)%-archive:(.+)$")
  if akind == "oci" or akind == "docker" then
    return { kind = akind .. "-archive", archive = akind, path = apath }
  end
  local scheme, rest = spec:match("^(https?)://(.+)$")
  local host = (rest or spec):gsub("/+$", "")
  if host:find("/", 1, true) then
    return nil, string.format(
      "registry spec '%s' must be a host[:port], not a repository path", spec), "INVALID"
  end
  if not host:match("^[%w%.%-]+:?%d*$") and not host:match("^%[[%x:]+%]:?%d*$") then
    return nil, string.format("registry spec '%s' is not a valid host[:port]", spec), "INVALID"
  end
  if host == "docker.io" or host == "index.docker.io" then
    host = "registry-1.docker.io"
  end
  return { kind = "registry", host = host, scheme = scheme or "auto" }
end

--- Every option fl.registry, fl.registry_options and the sync file's
-- registries take: those of core.endpoint.registry (src/lua/l_endpoint.c;
-- a new option there is added here too) plus insecure and create.
M.OPTION_KEYS = {
  ca_file = true, client_cert = true, client_key = true, tls_verify = true, pinned_pubkey = true,
  username = true, password_env = true, password_file = true, credential_helper = true,
  max_attempts = true, retry_base_ms = true, retry_max_ms = true, max_concurrency = true,
  requests_per_second = true, chunk_size = true, resume_chunk_size = true, page_size = true,
  connect_timeout_ms = true, low_speed_time = true, breaker_threshold = true, breaker_cooldown = true,
  scheme = true, insecure = true, create = true, write = true,
  max_list_pages = true, max_list_entries = true, auth_realm_strict = true, auth_realms = true,
  retry_after_max = true, request_timeout = true, attempt_timeout = true, min_remaining = true,
}

-- Raise on an option key not in OPTION_KEYS, naming the closest one.
local function check_options(what, opts, level)
  return require("freightliner.schema").check_keys(what, opts, M.OPTION_KEYS, level + 1)
end
M.check_options = check_options

--- Open a registry or OCI layout. opts: TLS (ca_file, client_cert,
-- client_key, tls_verify, pinned_pubkey), credentials by reference
-- (username, password_env, password_file, credential_helper), limits
-- (max_attempts, max_concurrency, requests_per_second, ...), min_remaining
-- (pause a replication while the pull budget is lower: freightliner.budget),
-- insecure (plain HTTP), create (OCI layouts: make the directory), write
-- (archives).
function M.open(spec, opts)
  check_options("fl.registry", opts, 2)
  opts = opts or {}
  local s, msg, code = M.parse_spec(spec)
  if not s then return nil, msg, code end
  local ep
  if s.kind == "oci" then
    ep, msg, code = core.endpoint.oci(s.path, opts.create ~= false)
  elseif s.archive then
    ep, msg, code = core.archive.open(s.archive, s.path, opts.write and "w" or "r")
  else
    local o = {}
    for k, v in pairs(opts) do
      if k ~= "insecure" and k ~= "create" then o[k] = v end
    end
    o.host = s.host
    o.scheme = (opts.insecure and "http") or (s.scheme ~= "auto" and s.scheme) or opts.scheme
    ep, msg, code = core.endpoint.registry(o)
  end
  if not ep then return nil, msg, code end
  return setmetatable({ ep = ep, spec = spec, kind = s.kind, host = s.host, path = s.path,
                        min_remaining = opts.min_remaining }, Registry)
end

--- Split "repo:tag", "repo@digest" or "repo:tag@digest" (repository-relative).
function M.split(ref)
  if type(ref) ~= "string" or ref == "" then
    return nil, "expected a reference like 'repo:tag' or 'repo@sha256:...'", "INVALID"
  end
  local name, digest = ref:match("^(.-)@(.+)$")
  name = name or ref
  local repo, tag = name:match("^(.*):([^/:]+)$")
  repo = repo or name
  if repo == "" then
    return nil, string.format("reference '%s' has no repository", ref), "INVALID"
  end
  return repo, tag, digest
end

-- The reference to ask the store for: the digest if given, else the tag.
local function resolve(ref, default_tag)
  local repo, tag, digest = M.split(ref)
  if not repo then return nil, tag, digest end
  return repo, digest or tag or default_tag
end

function Registry:ping()
  return self.ep:ping()
end

--- Repository names, optionally filtered by a glob and limited in number.
function Registry:catalog(opts)
  opts = opts or {}
  local repos, msg, code = self.ep:catalog(opts.pattern and 0 or (opts.limit or 0))
  if not repos then return nil, msg, code end
  if opts.pattern then
    local out = {}
    for _, r in ipairs(repos) do
      if core.glob(opts.pattern, r) then
        out[#out + 1] = r
        if opts.limit and #out >= opts.limit then break end
      end
    end
    repos = out
  end
  return repos
end

function Registry:tags(repo)
  return self.ep:tags(repo)
end

--- The tags of many repositories, listed concurrently (on up to
-- opts.concurrency threads, default 8, at most 64). Returns two tables keyed
-- by repository name: tags[repo] = the list :tags(repo) gives, and
-- errors[repo] = { message = ..., code = "NOT_FOUND" | ... } for each one
-- that could not be listed; every repository is in exactly one of them. A
-- failure of one repository does not stop the others.
function Registry:tags_many(repos, opts)
  if type(repos) ~= "table" then
    error("tags_many: expected a list of repository names", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("tags_many: options must be a table like { concurrency = 8 }", 2)
  end
  local n = opts and opts.concurrency
  if n ~= nil and (type(n) ~= "number" or not math.tointeger(n) or n < 1) then
    error("tags_many: concurrency must be an integer >= 1", 2)
  end
  return self.ep:tags_many(repos, opts)
end

--- A manifest: raw bytes (data), digest, media_type, size, and parsed JSON.
function Registry:manifest(ref)
  local repo, reference, code = resolve(ref, "latest")
  if not repo then return nil, reference, code end
  local m, msg
  m, msg, code = self.ep:manifest_get(repo, reference)
  if not m then return nil, msg, code end
  m.parsed = json.decode(m.data)
  m.repository = repo
  return m
end

function Registry:head(ref)
  local repo, reference, code = resolve(ref, "latest")
  if not repo then return nil, reference, code end
  return self.ep:manifest_head(repo, reference)
end

function Registry:put_manifest(ref, data, media_type)
  local repo, reference, code = resolve(ref)
  if not repo then return nil, reference, code end
  if not reference then
    reference = core.digest.sha256(data)
  end
  if not media_type then
    local parsed = json.decode(data)
    media_type = parsed and parsed.mediaType
    if not media_type then
      error("put_manifest: media_type is required when the manifest has no mediaType", 2)
    end
  end
  return self.ep:manifest_put(repo, reference, data, media_type)
end

function Registry:blob_exists(repo, digest)
  return self.ep:blob_exists(repo, digest)
end

function Registry:blob(repo, digest)
  return self.ep:blob_get(repo, digest)
end

function Registry:put_blob(repo, data)
  return self.ep:blob_put(repo, data)
end

function Registry:delete(ref)
  local repo, reference, code = resolve(ref)
  if not repo then return nil, reference, code end
  if not reference then
    error("delete: give a tag or digest, e.g. 'repo:tag'", 2)
  end
  local ok, msg
  ok, msg, code = self.ep:manifest_delete(repo, reference)
  if ok or code ~= "UNSUPPORTED" or reference:find(":", 1, true) then return ok, msg, code end
  -- a registry without tag deletion (Distribution 2.x): delete the manifest
  -- the tag names, and with it every tag on that manifest
  local head
  head, msg, code = self.ep:manifest_head(repo, reference)
  if not head then return nil, msg, code end
  return self.ep:manifest_delete(repo, head.digest)
end

-- Tag-schema fallback: cosign-style tags sha256-<hex>[.sig|.att|.sbom].
local function tag_schema_referrers(self, repo, digest, artifact_type)
  local tags, msg, code = self.ep:tags(repo)
  if not tags then return nil, msg, code end
  local prefix = digest:gsub(":", "-")
  local out = {}
  for _, t in ipairs(tags) do
    if t == prefix or t:sub(1, #prefix + 1) == prefix .. "." then
      local head = self.ep:manifest_head(repo, t)
      if head then
        local kind = t:match("%.(%w+)$")
        local entry = {
          mediaType = head.media_type, digest = head.digest, size = head.size,
          tag = t, kind = kind,
        }
        if not artifact_type or artifact_type == kind then
          out[#out + 1] = entry
        end
      end
    end
  end
  return out, "tag-schema"
end

--- Referrers of an image: OCI 1.1 referrers API, or cosign's tag scheme
-- where the registry has no such API. filter: { artifact_type = "..." } or
-- a string. Returns a list of descriptors and "api" or "tag-schema".
function Registry:referrers(ref, filter)
  local artifact_type = type(filter) == "table" and filter.artifact_type or filter
  local repo, reference, code = resolve(ref, "latest")
  if not repo then return nil, reference, code end
  local digest = reference
  if not digest:find(":", 1, true) then
    local head, msg
    head, msg, code = self.ep:manifest_head(repo, reference)
    if not head then return nil, msg, code end
    digest = head.digest
  end
  local index, msg
  index, msg, code = self.ep:referrers(repo, digest, artifact_type)
  if index then
    local parsed = json.decode(index.data) or {}
    local out = {}
    for _, d in ipairs(parsed.manifests or {}) do
      if not artifact_type or d.artifactType == artifact_type then out[#out + 1] = d end
    end
    return out, "api"
  end
  if code ~= "UNSUPPORTED" then return nil, msg, code end
  return tag_schema_referrers(self, repo, digest, artifact_type)
end

function Registry:stats()
  return self.ep:stats()
end

function Registry:close()
  if self.ep then self.ep:close() end
end

M.Registry = Registry

return M
