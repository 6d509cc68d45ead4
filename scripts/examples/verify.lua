--- verify.lua: check that a destination holds exactly what the source has.
--
--   freightliner run scripts/examples/verify.lua SRC_REGISTRY DST_REGISTRY [PATTERN] [PREFIX]
--
-- For every repository matching PATTERN (default '*') and every tag, compares
-- the manifest digest at the source with the one at the destination (under
-- PREFIX if given) and reports tags that are missing or differ. Exit status
-- 0 when identical, 1 when there are differences.
local src, dst, pattern, prefix = arg[1], arg[2], arg[3] or "*", arg[4]
if not src or not dst then
  io.stderr:write("usage: verify.lua SRC_REGISTRY DST_REGISTRY [PATTERN] [PREFIX]\n")
  return 2
end
local s, d = assert(fl.registry(src)), assert(fl.registry(dst))
local checked, missing, differ = 0, 0, 0
for _, repo in ipairs(assert(s:catalog{ pattern = pattern })) do
  local drepo = prefix and (prefix .. "/" .. repo) or repo
  for _, tag in ipairs(assert(s:tags(repo))) do
    checked = checked + 1
    local want = assert(s:head(repo .. ":" .. tag)).digest
    local have, _, code = d:head(drepo .. ":" .. tag)
    if not have then
      missing = missing + 1
      print(string.format("missing  %s:%s (%s)", drepo, tag, code))
    elseif have.digest ~= want then
      differ = differ + 1
      print(string.format("differs  %s:%s: %s != %s", drepo, tag, have.digest, want))
    end
  end
end
print(string.format("verified %d tags: %d missing, %d different", checked, missing, differ))
return (missing + differ == 0) and 0 or 1
