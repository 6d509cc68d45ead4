--- rock_policy.lua: a policy script for a stock lua5.4 with Freightliner
-- installed by LuaRocks (scripts/test-luarocks.sh).
--
--   lua5.4 rock_policy.lua SRC_REGISTRY DST_REGISTRY PATTERN PREFIX
--
-- Plans the repositories of SRC_REGISTRY matching PATTERN, copies them
-- under DST_REGISTRY/PREFIX, prints one line per image (source,
-- destination) and a summary, and exits with the run's status (0 all copied).
local fl = require("freightliner")
local src, dst, pattern, prefix = arg[1], arg[2], arg[3], arg[4]
if not (src and dst and pattern and prefix) then
  io.stderr:write("usage: lua5.4 rock_policy.lua SRC DST PATTERN PREFIX\n")
  os.exit(2)
end
-- Where the module came from: the LuaRocks tree, not the source tree.
print("module " .. package.searchpath("freightliner.core", package.cpath))
local plan = assert(fl.replicate.plan { source = src, destination = dst, pattern = pattern,
  dest_prefix = prefix })
local summary = fl.replicate.run(plan, { parallel = 4, progress = false })
for _, item in ipairs(plan.items) do print("planned " .. item.src .. " -> " .. item.dst) end
fl.replicate.print_summary(summary)
os.exit(summary.status)
