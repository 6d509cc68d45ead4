--- keep_latest.lua: copy only the newest N semantic-version tags of a repository.
--
--   freightliner run scripts/examples/keep_latest.lua SRC_REPO DST_REPO [N]
--
-- SRC_REPO/DST_REPO are host[:port]/repository. Tags that are not semantic
-- versions (latest, edge, sha-...) are ignored, as are pre-releases; of the
-- rest the N highest versions are copied (default 3).
local src, dst, n = arg[1], arg[2], tonumber(arg[3] or "3")
if not src or not dst then
  io.stderr:write("usage: keep_latest.lua SRC_REPO DST_REPO [N]\n")
  return 2
end
local semver = require("freightliner.semver")

local host, repo = src:match("^([^/]+)/(.+)$")
local reg = assert(fl.registry(host))
local versions = {}
for _, tag in ipairs(assert(reg:tags(repo))) do
  local v = semver.parse(tag)
  if v and #v.prerelease == 0 then versions[#versions + 1] = { tag = tag, v = v } end
end
table.sort(versions, function(a, b) return semver.compare(a.v, b.v) > 0 end)

local failed = 0
for i = 1, math.min(n, #versions) do
  local tag = versions[i].tag
  local r, msg = fl.copy(src .. ":" .. tag, dst .. ":" .. tag)
  print(string.format("%-10s %s", tag, r and (r.up_to_date and "up to date" or "copied") or ("FAILED: " .. msg)))
  if not r then failed = failed + 1 end
end
return failed == 0 and 0 or 1
