--- freightliner.clicheck: what the CLI checks before any transfer starts,
-- and the hints it adds to failures so a message points at the fix.
--
--   clicheck.image(s)        -> { spec, kind = "registry"|"oci", ref } | nil, message
--   clicheck.repository(s)   -> { spec, repository, name } | nil, message
--   clicheck.platform(p)     -> true | nil, message
--   clicheck.writable(path)  -> true | nil, message (its directory exists; nil path: true)
--   clicheck.wrap_policy(hooks, path) -> hooks whose results are type-checked
--   clicheck.explain(store_spec, message, code [, image]) -> a better message
--
-- Reference strings: host[:port]/repo[:tag][@digest], docker://..., and
-- http://host[:port]/... or https://... (the scheme asks for plain HTTP or
-- TLS), or oci:PATH[:TAG]. A malformed one is a usage error (exit 2).

local core = require("freightliner.core")
local exitcode = require("freightliner.exitcode")

local M = {}

-- "127.0.0.1:5000", "registry.example.com", "localhost:5000": a registry
-- where an image or repository was expected.
local function registry_only(s)
  if s:find("/", 1, true) then return false end
  local host, port = s:match("^([^:]+):?(%d*)$")
  if not host then return false end
  return host == "localhost" or host:find(".", 1, true) ~= nil or (port ~= "" and host:match("^[%w.-]+$") ~= nil)
end

local function split_scheme(s)
  s = s:gsub("^docker://", "")
  local scheme, rest = s:match("^(https?)://(.+)$")
  return scheme, rest or s
end

function M.image(s)
  if type(s) ~= "string" or s == "" then return nil, "an image reference must be a non-empty string" end
  local path = s:match("^oci:(.*)$")
  if path then
    if path == "" then return nil, string.format("'%s' names no OCI layout directory (oci:PATH[:TAG])", s) end
    return { spec = s, kind = "oci" }
  end
  local kind, file = s:match("^(%a+%-archive):(.*)$")
  if kind == "oci-archive" or kind == "docker-archive" then
    if file == "" then return nil, string.format("'%s' names no archive file (%s:FILE[:REF])", s, kind) end
    return { spec = s, kind = kind }
  end
  local scheme, rest = split_scheme(s)
  if registry_only(rest) then
    return nil, string.format("'%s' is a registry, not an image: add the repository and tag, e.g. %s/team/app:v1",
      s, s:gsub("/+$", ""))
  end
  local r, msg = core.ref.parse(rest)
  if not r then return nil, msg end
  return { spec = s, kind = "registry", ref = r, scheme = scheme }
end

function M.repository(s)
  if type(s) ~= "string" or s == "" then return nil, "a repository must be a non-empty string" end
  local scheme, rest = split_scheme(s)
  if registry_only(rest) then
    return nil, string.format("'%s' is a registry, not a repository: add the repository, e.g. %s/team/app",
      s, s:gsub("/+$", ""))
  end
  local r, msg = core.ref.parse_repository(rest)
  if not r then return nil, msg end
  return { spec = s, repository = r.repository, name = r.name, host = r.api_host,
           store = scheme and (scheme .. "://" .. r.api_host) or r.api_host }
end

-- The same grammar as validate-config's platforms: os/arch[/variant].
function M.platform(p)
  if type(p) == "string" and (p:match("^[a-z0-9]+/[a-z0-9_]+$") or p:match("^[a-z0-9]+/[a-z0-9_]+/[a-z0-9]+$")) then
    return true
  end
  return nil, string.format("'%s' is not a platform (expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8)",
    tostring(p))
end

--- A file the run will write (metrics, checkpoint): its directory must
-- exist, and the path must not be a directory, so the run does not fail
-- at its end for a typo.
function M.writable(path)
  if path == nil then return true end
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local exists, kind = core.fs.exists(dir)
  if not exists or kind ~= "directory" then
    return nil, string.format("the directory %s of %s does not exist", dir, path)
  end
  exists, kind = core.fs.exists(path)
  if exists and kind == "directory" then return nil, string.format("%s is a directory", path) end
  return true
end

-- What each policy hook may return: a checker of its results, or nil.
local RESULTS = {
  filter = function(keep)
    if keep ~= nil and type(keep) ~= "boolean" then return "must return true or false (or nothing)", keep end
  end,
  rename = function(repo, tag)
    if repo ~= nil and type(repo) ~= "string" then
      return "must return a repository name (a string) or nil", repo
    end
    if tag ~= nil and type(tag) ~= "string" then
      return "must return a tag (a string) as its second value, or nil", tag
    end
  end,
  retry = function(delay)
    if delay ~= nil and delay ~= false and (type(delay) ~= "number" or delay < 0 or delay ~= delay) then
      return "must return a delay in seconds (a number >= 0) or nil to give up", delay
    end
  end,
}

local function shown(v)
  if type(v) == "string" then return string.format("%q", v) end
  return string.format("%s (a %s)", tostring(v), type(v))
end

--- The policy's hooks, each checked at the boundary. A hook that is not a
-- known name or not a function is a configuration error (exit 2) when the
-- policy loads; a result of the wrong type raises a user error naming the
-- policy file and the hook: before any transfer for the plan-time hooks
-- (filter, rename: exit 2), the image's failure for the run-time ones
-- (replicate.call_hook decides). A hook that raises keeps its own error, so
-- the report names the policy's file and line.
M.HOOKS = { "filter", "rename", "retry", "on_done", "on_error" }

function M.wrap_policy(hooks, path)
  local out = {}
  for name, fn in pairs(hooks) do
    local known = false
    for _, h in ipairs(M.HOOKS) do known = known or h == name end
    if not known then
      local hint = type(name) == "string" and require("freightliner.schema").closest(name, M.HOOKS)
      exitcode.raise(exitcode.USAGE, string.format("policy %s: unknown hook '%s'%s (hooks: %s)", path, tostring(name),
        hint and string.format(" (did you mean '%s'?)", hint) or "", table.concat(M.HOOKS, ", ")))
    end
    if type(fn) ~= "function" then
      exitcode.raise(exitcode.USAGE, string.format("policy %s: '%s' must be a function, not a %s", path, name,
        type(fn)))
    end
    local check = RESULTS[name]
    out[name] = function(...)
      local r = table.pack(pcall(fn, ...))
      if not r[1] then error(r[2], 0) end
      if check then
        local problem, value = check(table.unpack(r, 2, r.n))
        if problem then
          exitcode.raise(exitcode.USAGE, string.format("policy %s: hook '%s' %s; it returned %s", path, name,
            problem, shown(value)))
        end
      end
      return table.unpack(r, 2, r.n)
    end
  end
  return out
end

--- A failure message with a hint at the fix, where one is known.
-- `store` is a registry object of the host the failure came from (or nil).
local not_registry = {} -- spec -> true when GET /v2/ answered 404 (asked once per run)

function M.explain(store, msg, code)
  msg = tostring(msg)
  if code == "NOT_FOUND" and store and store.kind == "registry" and not msg:find("_UNKNOWN", 1, true) then
    if not_registry[store.spec] == nil then
      local ok, _, pcode = store:ping()
      not_registry[store.spec] = not ok and pcode == "NOT_FOUND"
    end
    if not_registry[store.spec] then
      return msg .. string.format("; %s does not look like a container registry (GET /v2/ answered 404): "
        .. "check the host and port", store.spec)
    end
  end
  if code == "NOT_FOUND" and store and store.kind == "oci" and store.path then
    local exists = core.fs.exists(store.path)
    if not exists then
      return msg .. string.format("; the OCI layout directory %s does not exist: check the path", store.path)
    end
  end
  return msg
end

return M
