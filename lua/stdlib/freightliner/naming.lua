--- freightliner.naming: where an image goes, i.e. the destination
-- repository and tag for a source repository and tag.
--
--   naming.destination{ prefix = "mirror" }          team/app:v1 -> mirror/team/app:v1
--   naming.destination{ template = "backup/{name}" } team/app:v1 -> backup/app:v1
--   naming.destination{ template = "m/{repo}:{tag}-amd64" }   (a ':' sets the tag)
--   naming.destination{ fn = function(repo, tag) return repo, tag end }
--   ... and any of them with rename = hooks.rename (a policy's
--   rename(repo, tag) -> repo, tag, applied last).
--   -> name(repo, tag) -> dst_repo, dst_tag | nil, message, "INVALID"
--   naming.check_template(t) -> true | nil, message
--   naming.render(t, repo, tag) -> string
--
-- Placeholders: {repo} the source repository, {name} its last path
-- component, {tag} the tag.

local M = {}

local PLACEHOLDERS = { repo = true, name = true, tag = true }

--- Check a template's placeholders and braces.
function M.check_template(t)
  if type(t) ~= "string" or t == "" then
    return nil, "a destination template must be a non-empty string"
  end
  for name in t:gmatch("{([%w_]*)}") do
    if not PLACEHOLDERS[name] then
      return nil, string.format("unknown placeholder '{%s}' in template '%s' (known: {repo}, {name}, {tag})",
        name, t)
    end
  end
  local rest = t:gsub("{[%w_]+}", "")
  if rest:find("[{}]") then
    return nil, string.format("unbalanced '{' or '}' in template '%s'", t)
  end
  if not t:find("{repo}", 1, true) and not t:find("{name}", 1, true) then
    return nil, string.format("template '%s' names no repository: use {repo} or {name}, "
      .. "or every image lands in the same repository", t)
  end
  return true
end

function M.render(t, repo, tag)
  local vars = { repo = repo, name = repo:match("[^/]+$") or repo, tag = tag or "" }
  return (t:gsub("{(%w+)}", vars))
end

local function join(prefix, repo)
  prefix = prefix and prefix:gsub("^/+", ""):gsub("/+$", "") or ""
  if prefix == "" then return repo end
  return prefix .. "/" .. repo
end
M.join = join

--- A naming function from a spec; see the module comment.
function M.destination(spec)
  spec = spec or {}
  local set = 0
  for _, k in ipairs({ "prefix", "template", "fn" }) do
    if spec[k] ~= nil then set = set + 1 end
  end
  if set > 1 then
    return nil, "give at most one of a destination prefix, template or function", "INVALID"
  end
  local base
  if spec.template then
    local ok, err = M.check_template(spec.template)
    if not ok then return nil, err, "INVALID" end
    base = function(repo, tag)
      local s = M.render(spec.template, repo, tag)
      local r, t = s:match("^(.*[^/]):([^/:]+)$")
      return r or s, t or tag
    end
  elseif spec.fn then
    if type(spec.fn) ~= "function" then
      return nil, "a destination function must be a function", "INVALID"
    end
    base = spec.fn
  else
    if spec.prefix ~= nil and type(spec.prefix) ~= "string" then
      return nil, "a destination prefix must be a string", "INVALID"
    end
    base = function(repo, tag) return join(spec.prefix, repo), tag end
  end
  local rename = spec.rename
  return function(repo, tag)
    local r, t = base(repo, tag)
    r, t = r or repo, t or tag
    if rename then
      local r2, t2 = rename(r, t)
      r, t = r2 or r, t2 or t
    end
    if type(r) ~= "string" or r == "" or r:find("^/") or r:find("//", 1, true) then
      return nil, string.format("destination repository for %s:%s is not a valid name: %s",
        repo, tag, tostring(r)), "INVALID"
    end
    if type(t) ~= "string" or t == "" then
      return nil, string.format("destination tag for %s:%s is not a valid tag: %s",
        repo, tag, tostring(t)), "INVALID"
    end
    return r, t
  end
end

return M
