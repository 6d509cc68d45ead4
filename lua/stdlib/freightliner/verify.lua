--- freightliner.verify: accept an image only when our keys signed it.
--
--   fl.verify(ref, { keys = { "cosign.pub", ... }, require = "any" | "all" })
--       -> { digest =, signatures =, keys = { names }, keyless =, where = }
--        | nil, message, CODE    ("UNVERIFIED" when refused)
--   verify.options(v)            -> the checked { keys =, require = } (raises
--                                   on misuse), as fl.copy's `verify` option
--   verify.image(resolved, v)    -> as fl.verify, for an image fl.copy resolved
--   verify.preflight(v)          -> true | nil, message (options and key files)
--   verify.is_signature_tag(tag) -> true for cosign's sha256-<hex>[.sig|.att|.sbom]
--
-- What is checked: cosign key-based signatures of the image's digest (the
-- index digest for a multi-arch image), found in its OCI 1.1 referrers (or
-- the referrers tag schema) and in the tag sha256-<hex>.sig; the payload
-- must name that digest and be signed by a given public key (ECDSA, Ed25519,
-- RSA; PEM). Keyless signatures (Fulcio certificates, Rekor) are reported as
-- such and not accepted. The cryptography is in C (src/trust).

local core = require("freightliner.core")

local M = {}

-- Loaded key sets by the list of keys, so a run reads each key file once.
local keysets = {}

local allowed = { keys = true, require = true }

--- Check a `verify` option: { keys = {...} (or one string), require = }.
-- Misuse raises an error naming the fix.
function M.options(v, level)
  level = (level or 1) + 1
  if type(v) == "string" then v = { keys = { v } } end
  if type(v) ~= "table" then
    error("verify must be a table { keys = { 'cosign.pub' }, require = 'any' | 'all' }", level)
  end
  for k in pairs(v) do
    if not allowed[k] then
      error(string.format("verify: unknown option '%s' (valid: keys, require)", tostring(k)), level)
    end
  end
  local keys = v.keys
  if type(keys) == "string" then keys = { keys } end
  if type(keys) ~= "table" or #keys == 0 then
    error("verify.keys must list at least one public key file (PEM)", level)
  end
  for _, k in ipairs(keys) do
    if type(k) ~= "string" or k == "" then
      error("verify.keys must be file names or PEM strings", level)
    end
  end
  local require_ = v.require or "any"
  if require_ ~= "any" and require_ ~= "all" then
    error(string.format("verify.require must be 'any' or 'all', not '%s'", tostring(require_)), level)
  end
  return { keys = keys, require = require_ }
end

local function keyset(keys)
  local id = table.concat(keys, "\0")
  local ks = keysets[id]
  if ks then return ks end
  local msg, code
  ks, msg, code = core.trust.keys(keys)
  if not ks then return nil, msg, code end
  keysets[id] = ks
  return ks
end

--- Is `tag` one of cosign's artifact tags (sha256-<hex>, sha256-<hex>.sig,
-- .att, .sbom) rather than an image's?
function M.is_signature_tag(tag)
  if type(tag) ~= "string" then return false end
  local hex, suffix = tag:match("^sha256%-(%x+)(.*)$")
  return hex ~= nil and #hex == 64
    and (suffix == "" or suffix == ".sig" or suffix == ".att" or suffix == ".sbom")
end

--- Check a verify option and load its keys before a run starts, so that a
-- typo fails the run at once: true | nil, message.
function M.preflight(v)
  local ok, checked = pcall(M.options, v)
  if not ok then return nil, (tostring(checked):gsub("^.-:%d+: ", "")) end
  local ks, msg = keyset(checked.keys)
  if not ks then return nil, msg end
  return true
end

--- Verify an image fl.copy resolved ({ registry, repository, reference }).
-- Inside a task the requests run on a thread of their own and only this
-- task waits (other tasks go on, copies keep being collected); at the top
-- level it simply blocks.
function M.image(img, v)
  local ks, msg, code = keyset(v.keys)
  if not ks then return nil, msg, code end
  local copy = require("freightliner.copy")
  if not copy.in_task() then
    return core.trust.verify(img.registry.ep, img.repository, img.reference, ks, v.require)
  end
  local job
  job, msg, code = core.trust.start(img.registry.ep, img.repository, img.reference, ks, v.require)
  if not job then return nil, msg, code end
  local wait = 0.002
  while not job:done() do
    copy.sleep(wait)
    wait = math.min(wait * 2, 0.05)
  end
  return job:result()
end

--- fl.verify(ref, opts): see the module comment.
function M.verify(ref, opts)
  local v = M.options(opts, 2)
  local copy = require("freightliner.copy")
  local img, msg, code = copy.resolve(ref)
  if not img then return nil, msg, code end
  local r
  r, msg, code = M.image(img, v)
  if not r then return nil, msg, code end
  r.image = img.name
  return r
end

return M
