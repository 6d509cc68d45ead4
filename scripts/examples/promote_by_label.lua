--- promote_by_label.lua: promote images whose config carries a label value.
--
--   freightliner run scripts/examples/promote_by_label.lua SRC_REPO DST_REPO LABEL=VALUE
--
-- Reads each tag's image config (for an index, its first child's) and
-- copies the tags whose config.Labels[LABEL] equals VALUE, e.g. promote
-- every build labelled org.opencontainers.image.version=v1.1 to production.
local src, dst, want = arg[1], arg[2], arg[3]
local label, value = (want or ""):match("^([^=]+)=(.*)$")
if not src or not dst or not label then
  io.stderr:write("usage: promote_by_label.lua SRC_REPO DST_REPO LABEL=VALUE\n")
  return 2
end
local host, repo = src:match("^([^/]+)/(.+)$")
local reg = assert(fl.registry(host))

local function labels_of(ref)
  local m = assert(reg:manifest(ref))
  if m.parsed.manifests then -- an index: look at the first child
    m = assert(reg:manifest(repo .. "@" .. m.parsed.manifests[1].digest))
  end
  if not m.parsed.config then return {} end
  local config = fl.json.decode(assert(reg:blob(repo, m.parsed.config.digest)))
  return (config.config or {}).Labels or {}
end

local promoted, failed = 0, 0
for _, tag in ipairs(assert(reg:tags(repo))) do
  if not tag:match("^sha256%-") and labels_of(repo .. ":" .. tag)[label] == value then
    local r, msg = fl.copy(src .. ":" .. tag, dst .. ":" .. tag)
    print(string.format("promote %s:%s -> %s", repo, tag, r and "ok" or ("FAILED: " .. msg)))
    if r then promoted = promoted + 1 else failed = failed + 1 end
  end
end
print(string.format("%d promoted, %d failed", promoted, failed))
return failed == 0 and 0 or 1
