-- flcov: line coverage of the Freightliner Lua stdlib, on debug.sethook.
--
-- luacov is not packaged in Debian 12, so this is the collector the test
-- suites load: `lua5.4 -e "dofile('tests/coverage/flcov.lua')" ...` for
-- busted, FREIGHTLINER_LUA_INIT=@tests/coverage/flcov.lua for the binary.
-- With FL_LUA_COVERAGE_DIR=DIR set it counts every line executed in a file
-- whose chunk name contains `lua/stdlib/` (on the main thread and in every
-- coroutine created after it was loaded), and at exit writes one file
-- DIR/<pid>-<n>.cov: lines "relative/path.lua<TAB>line<TAB>count".
-- scripts/lua-coverage.lua merges them. Without the variable it does nothing.

local dir = os.getenv("FL_LUA_COVERAGE_DIR")
if not dir or dir == "" then return end

local counts = {} -- relative path -> { [line] = count }
local names = {}  -- chunk name -> relative path | false (not ours)
local getinfo, sethook = debug.getinfo, debug.sethook

local function hook(_, line)
  local source = getinfo(2, "S").source
  local rel = names[source]
  if rel == nil then
    rel = source:match("lua/stdlib/(.+%.lua)$") or false
    names[source] = rel
    if rel and not counts[rel] then counts[rel] = {} end
  end
  if rel then
    local c = counts[rel]
    c[line] = (c[line] or 0) + 1
  end
end

local written = false
local function flush()
  if written then return end
  written = true
  sethook()
  local path = string.format("%s/%d-%d.cov", dir, math.floor(os.time()),
    math.random(1, 1 << 30))
  local tmp = path .. ".tmp"
  local f = io.open(tmp, "w")
  if not f then return end
  for rel, lines in pairs(counts) do
    for line, n in pairs(lines) do
      f:write(rel, "\t", line, "\t", n, "\n")
    end
  end
  f:close()
  os.rename(tmp, path)
end

-- Every coroutine gets the hook too: hooks are per Lua thread.
local create = coroutine.create
coroutine.create = function(f)
  local co = create(f)
  sethook(co, hook, "l")
  return co
end
coroutine.wrap = function(f)
  local co = coroutine.create(f)
  return function(...)
    local r = table.pack(coroutine.resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
end

-- Written at os.exit (busted ends that way) or when the state closes.
local exit = os.exit
os.exit = function(...)
  flush()
  return exit(...)
end
setmetatable(counts, { __gc = flush })
debug.getregistry().flcov = counts -- alive until lua_close, whatever _G does

math.randomseed(os.time() + math.floor(os.clock() * 1e6))
sethook(hook, "l")
