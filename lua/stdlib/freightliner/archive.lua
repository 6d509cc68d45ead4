--- freightliner.archive: oci-archive: and docker-archive: references, as
-- fl.copy resolves them.
--
--   archive.parse(ref)                       -> "oci" | "docker", rest | nil
--   archive.resolve(stores, ref, kind, rest, side) -> image | nil, msg, CODE
--   archive.finish(stores)                   -> true | nil, msg, CODE
--
-- `stores` is fl.copy's table of open stores (one per store, so the engine
-- recognises shared blobs). An archive is read as a source and written as
-- a destination (one writer per file); finish writes every archive written
-- into (src/registry/archive.h) and forgets it.

local core = require("freightliner.core")
local registry = require("freightliner.registry")

local M = {}

--- "oci-archive:REST" / "docker-archive:REST" -> kind, REST.
function M.parse(x)
  local kind, rest = x:match("^(%a+)%-archive:(.+)$")
  if kind == "oci" or kind == "docker" then return kind, rest end
  return nil
end

local function open_archive(stores, kind, file, write)
  local key = string.format("%s-archive:%s#%s", kind, file, write and "w" or "r")
  local reg = stores[key]
  if reg then return reg end
  local msg, code
  reg, msg, code = registry.open(kind .. "-archive:" .. file, { write = write })
  if not reg then return nil, msg, code end
  reg.archive_writer = write or nil
  stores[key] = reg
  return reg
end

--- "oci-archive:FILE[:TAG|:sha256:HEX]", "docker-archive:FILE[:NAME:TAG]"
-- -> { registry, repository, reference, tag, digest, name }. Without a
-- reference a source is the archive's only image; a destination gets
-- "latest" (docker-archive: no RepoTags). side: "source" | "destination".
function M.resolve(stores, x, kind, rest, side)
  local file, ref = rest:match("^([^:]+):(.+)$")
  file = file or rest
  local write = side == "destination"
  local reg, msg, code = open_archive(stores, kind, file, write)
  if not reg then return nil, msg, code end
  local repo, tag = "image", ref
  if kind == "docker" then
    repo, tag = "", nil
    if ref then
      if ref:find("@", 1, true) then
        return nil, "docker-archive references are NAME:TAG, not digests: " .. x, "INVALID"
      end
      repo, tag = ref:match("^(.*):([^/:]+)$")
      if not repo then repo = ref end
    end
  end
  -- oci-archive:FILE:sha256:HEX (or @sha256:HEX) names an image by digest
  local digest = kind == "oci" and ref and ref:match("^@?(sha256:%x+)$")
  if digest then
    return { registry = reg, repository = repo, reference = digest, digest = digest, name = x }
  end
  tag = tag or (write and "latest" or nil)
  return { registry = reg, repository = repo, reference = tag or "", tag = tag, name = x }
end

--- Write every archive opened for writing in `stores`, and forget them.
-- true | nil, message, CODE (the first failure; the others are still
-- attempted). An archive nothing was copied into is no failure.
function M.finish(stores)
  local first_msg, first_code
  for key, reg in pairs(stores) do
    if reg.archive_writer then
      local ok, msg, code = core.archive.finish(reg.ep)
      local empty = code == "NOT_FOUND" and msg:find("nothing was written", 1, true)
      if not ok and not empty and not first_msg then first_msg, first_code = msg, code end
      reg:close()
      stores[key] = nil
    end
  end
  if first_msg then return nil, first_msg, first_code end
  return true
end

return M
