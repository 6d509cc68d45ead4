--- copy_all.lua: the benchmark's Lua path. Copy every tag of every
-- repository of a source registry to a destination registry.
--
--   freightliner run scripts/bench/copy_all.lua SRC_REGISTRY DST_REGISTRY [CONCURRENCY]
--
-- Lists the source catalog and the tags of each repository, then copies
-- every image with fl.parallel (CONCURRENCY images at a time, default 8)
-- on an engine of as many blob workers. One registry object per side, so
-- the engine sees one endpoint per store (shared blobs are deduplicated and
-- mounted across repositories). Prints one summary line; any failed copy
-- raises (exit status 1).
-- luacheck: globals fl
local src_spec, dst_spec = arg[1], arg[2]
local n = math.tointeger(tonumber(arg[3] or "8")) or 8
if not src_spec or not dst_spec then
  io.stderr:write("usage: copy_all.lua SRC_REGISTRY DST_REGISTRY [CONCURRENCY]\n")
  return 2
end

fl.configure{ workers = n }
local src = assert(fl.registry(src_spec))
local dst = assert(fl.registry(dst_spec))

local items = {}
for _, repo in ipairs(assert(src:catalog())) do
  for _, tag in ipairs(assert(src:tags(repo))) do
    items[#items + 1] = { repo = repo, tag = tag }
  end
end

local copied, current, bytes = 0, 0, 0
fl.parallel(items, function(i)
  local r = assert(fl.copy({ registry = src, repository = i.repo, tag = i.tag },
                           { registry = dst, repository = i.repo, tag = i.tag }))
  if r.up_to_date then current = current + 1 else copied = copied + 1 end
  bytes = bytes + (r.bytes or 0)
end, { concurrency = n })

local c = fl.counters()
print(string.format("%d images copied, %d up to date; %d bytes; blobs: %d copied, %d skipped, %d mounted",
  copied, current, bytes, c.blobs_copied, c.blobs_skipped, c.blobs_mounted))
return 0
