--- mirror.lua: mirror every repository matching a pattern, all tags.
--
--   freightliner run scripts/examples/mirror.lua SRC_REGISTRY DST_REGISTRY [PATTERN] [PREFIX]
--
-- Lists the source catalog, keeps repositories matching PATTERN (a glob,
-- default '*'), copies every tag to DST_REGISTRY (under PREFIX if given),
-- eight images at a time, and prints a summary. Exit status 0 when every
-- image copied, 1 otherwise: the same contract as `freightliner replicate`.
local src, dst, pattern, prefix = arg[1], arg[2], arg[3] or "*", arg[4]
if not src or not dst then
  io.stderr:write("usage: mirror.lua SRC_REGISTRY DST_REGISTRY [PATTERN] [PREFIX]\n")
  return 2
end

local plan = assert(fl.replicate.plan{
  source = src, destination = dst, pattern = pattern, dest_prefix = prefix,
})
print(string.format("mirroring %d images from %s to %s", #plan.items, src, dst))
local summary = fl.replicate.run(plan, { parallel = 8, progress = true })
fl.replicate.print_summary(summary)
return summary.status
