--- multiarch_subset.lua: copy only some platforms of multi-arch images.
--
--   freightliner run scripts/examples/multiarch_subset.lua SRC_IMAGE DST_IMAGE PLATFORM...
--
-- e.g. ... 127.0.0.1:5000/base/os:v1 127.0.0.1:6000/base/os:v1 linux/amd64 linux/arm64
-- The destination gets a new index listing only those platforms (its
-- digest differs from the source's), pushed after the chosen children.
local src, dst = arg[1], arg[2]
local platforms = table.move(arg, 3, #arg, 1, {})
if not src or not dst or #platforms == 0 then
  io.stderr:write("usage: multiarch_subset.lua SRC_IMAGE DST_IMAGE PLATFORM...\n")
  return 2
end
local r, msg, code = fl.copy(src, dst, { platforms = platforms })
if not r then
  io.stderr:write(string.format("copy failed: %s (%s)\n", msg, code))
  return 1
end
print(string.format("%s -> %s: %s (source index %s)%s", src, dst, r.digest, r.source_digest,
  r.index_rewritten and ", new index with " .. table.concat(platforms, ", ") or ""))
return 0
