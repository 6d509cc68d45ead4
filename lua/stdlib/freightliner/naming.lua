--- freightliner.naming: where an image goes, i.e. the destination
-- repository and tag for a source repository and tag.
--
--   naming.destination{ prefix = "mirror" }          team/app:v1 -> mirror/team/app:v1
--   naming.destination{ template = "backup/{name}" } team/app:v1 -> backup/app:v1
--   naming.destination{ template = "m/{repo}:{tag}-amd64" }   (a ':' sets the tag)
--   naming.destination{ fn = function(repo, tag) return repo, tag end }
--   naming.destination{ rename_prefix = { from = "team", to = "backup/team" } }
--                                                    team/app:v1 -> backup/team/app:v1
--   ... and any of them with rename = hooks.rename (a policy's
--   rename(repo, tag) -> repo, tag, applied last).
--   -> name(repo, tag) -> dst_repo, dst_tag | nil, message, "INVALID"
--      (tag nil: an image pinned by digest; only dst_repo is returned)
--   naming.check_template(t) -> true | nil, message
--   naming.check_tag(s), naming.check_repository(s) -> true | nil, message
--      the grammar of a tag and of a repository path (distribution spec);
--      names listed by a registry are checked with these and then used as
--      they are, never parsed again as part of a reference.
--   naming.render(t, repo, tag) -> string
--
-- Placeholders: {repo} the source repository, {name} its last path
-- component, {tag} the tag.

local M = {}

local PLACEHOLDERS = { repo = true, name = true, tag = true }

local function show(s)
  return (tostring(s):gsub("[%c\127]", function(c) return string.format("\\x%02x", c:byte()) end))
end

--- A tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
function M.check_tag(t)
  if type(t) ~= "string" or #t == 0 or #t > 128 or not t:match("^[%w_][%w_.%-]*$") then
    return nil, string.format("'%s' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-], at most 128)",
      show(t))
  end
  return true
end

--- A repository path: lower-case components [a-z0-9]+ joined by . _ __ or
-- dashes, separated by '/'.
function M.check_repository(r)
  local ok = type(r) == "string" and #r > 0 and #r <= 255
  if ok then
    for part in (r .. "/"):gmatch("(.-)/") do
      if not part:match("^[a-z0-9]+$") and not (part:match("^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
          and not part:find("[._][._]") or part:match("^[a-z0-9]+__[a-z0-9]+$")) then
        ok = false
        break
      end
    end
  end
  if not ok then
    return nil, string.format("'%s' is not a repository name (lower-case letters, digits and . _ - /)",
      show(r))
  end
  return true
end

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
  -- the fixed parts must be valid wherever they land: render it for a
  -- plain name and check the result against the grammar
  local r, tag = M.split_rendered(M.render(t, "a/b", "t"), "t")
  local ok, err = M.check_repository(r)
  if ok then ok, err = M.check_tag(tag) end
  if not ok then
    return nil, string.format("template '%s' makes invalid names (for a/b:t it gives %s:%s): %s", t, r, tag,
      err)
  end
  return true
end

--- "repo:tag" from a rendered template: a ':' after the last '/' sets the
-- tag; without one the tag stays `tag`.
function M.split_rendered(s, tag)
  local r, t = s:match("^(.*[^/]):([^/:]+)$")
  return r or s, t or tag
end

--- A prefix: a repository path (or empty).
function M.check_prefix(p)
  if type(p) ~= "string" then return nil, "a destination prefix must be a string" end
  local trimmed = p:gsub("^/+", ""):gsub("/+$", "")
  if trimmed == "" then return true end
  local ok, err = M.check_repository(trimmed)
  if not ok then return nil, "prefix " .. err end
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
  for _, k in ipairs({ "prefix", "template", "fn", "rename_prefix" }) do
    if spec[k] ~= nil then set = set + 1 end
  end
  if set > 1 then
    return nil, "give at most one of a destination prefix, template, rename_prefix or function", "INVALID"
  end
  local base
  if spec.template then
    local ok, err = M.check_template(spec.template)
    if not ok then return nil, err, "INVALID" end
    base = function(repo, tag)
      return M.split_rendered(M.render(spec.template, repo, tag), tag)
    end
  elseif spec.fn then
    if type(spec.fn) ~= "function" then
      return nil, "a destination function must be a function", "INVALID"
    end
    base = spec.fn
  elseif spec.rename_prefix then
    local from, to = spec.rename_prefix.from or "", spec.rename_prefix.to
    base = function(repo, tag)
      local rest = repo
      if from ~= "" and (repo == from or repo:sub(1, #from + 1) == from .. "/") then
        rest = repo:sub(#from + 2)
      end
      if rest == "" then rest = repo:match("[^/]+$") end
      return join(to, rest), tag
    end
  else
    if spec.prefix ~= nil then
      local ok, err = M.check_prefix(spec.prefix)
      if not ok then return nil, err, "INVALID" end
    end
    base = function(repo, tag) return join(spec.prefix, repo), tag end
  end
  local rename = spec.rename
  return function(repo, tag)
    local pinned = tag == nil
    local r, t = base(repo, tag or "latest")
    r, t = r or repo, t or tag
    if rename then
      local r2, t2 = rename(r, t)
      r, t = r2 or r, t2 or t
    end
    local ok, err = M.check_repository(r)
    if not ok then
      return nil, string.format("destination repository for %s:%s: %s", repo, show(tag or "@digest"), err),
        "INVALID"
    end
    if pinned then return r end
    ok, err = M.check_tag(t)
    if not ok then
      return nil, string.format("destination tag for %s:%s: %s", repo, show(tag), err), "INVALID"
    end
    return r, t
  end
end

return M
