-- The Lua line-coverage runner (tests/coverage/flcov.lua + scripts/
-- lua-coverage.lua) measured against a fixture whose executed lines are
-- known by construction: one function never called, one line reached
-- only inside a coroutine, one only inside coroutine.wrap.
local helpers = require("helpers")

local root = helpers.root
local q = helpers.shell_quote

local FIXTURE = [[
local function never()
  return "never"
end
local function f(x)
  if x then
    return 1
  end
  return 2
end
f(true)
local co = coroutine.create(function() return f(false) end)
coroutine.resume(co)
local w = coroutine.wrap(function() return f(false) + 1 end)
w()
]]

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  return ok and 0 or status, out
end

describe("Lua line coverage runner", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. q(dir .. "/lua/stdlib/freightliner") .. " " .. q(dir .. "/cov")))
  end)

  after_each(function()
    os.execute("rm -rf " .. q(dir))
  end)

  local function run_fixture(exit_how)
    helpers.write_file(dir .. "/lua/stdlib/freightliner/fixture.lua", FIXTURE .. exit_how)
    local status, out = sh(string.format(
      "cd %s && FL_LUA_COVERAGE_DIR=%s lua5.4 -e %s lua/stdlib/freightliner/fixture.lua",
      q(dir), q(dir .. "/cov"), q("dofile('" .. root .. "/tests/coverage/flcov.lua')")))
    assert.are.equal(0, status, out)
  end

  local function report(extra)
    return sh(string.format("cd %s && lua5.4 %s cov --root lua/stdlib --out rep.txt %s",
      q(dir), q(root .. "/scripts/lua-coverage.lua"), extra or ""))
  end

  local function missed()
    local f = assert(io.open(dir .. "/rep.txt"))
    local text = f:read("a")
    f:close()
    return text:match("fixture%.lua missed: ([%d,]+)")
  end

  it("counts lines run in coroutines and reports exactly the line never run (os.exit)", function()
    run_fixture("os.exit(0)\n")
    local status, out = report()
    assert.are.equal(0, status, out)
    assert.are.equal("2", missed())
    assert.matches("freightliner/fixture%.lua%s+12%s+11%s+91%.7%%", out)
  end)

  it("writes its counts when the state closes without os.exit", function()
    run_fixture("")
    local status, out = report()
    assert.are.equal(0, status, out)
    assert.are.equal("2", missed())
  end)

  it("fails the gate below the threshold and passes at it", function()
    run_fixture("")
    local status, out = report("--min 95")
    assert.are_not.equal(0, status)
    assert.matches("below the gate of 95%%", out)
    status = report("--min 90.5")
    assert.are.equal(0, status)
  end)

  it("fails when no process wrote coverage", function()
    local status, out = report()
    assert.are_not.equal(0, status)
    assert.matches("no coverage files", out)
  end)

  it("does nothing without FL_LUA_COVERAGE_DIR", function()
    helpers.write_file(dir .. "/lua/stdlib/freightliner/fixture.lua", FIXTURE)
    local status = sh(string.format("cd %s && lua5.4 -e %s lua/stdlib/freightliner/fixture.lua",
      q(dir), q("dofile('" .. root .. "/tests/coverage/flcov.lua')")))
    assert.are.equal(0, status)
    local _, listing = sh("ls " .. q(dir .. "/cov"))
    assert.are.equal("", listing)
  end)

  it("is loaded by the binary through FREIGHTLINER_LUA_INIT", function()
    local status, _, err = helpers.run({ "version" }, {
      env = string.format("FL_LUA_COVERAGE_DIR=%s FREIGHTLINER_LUA_INIT=@%s", q(dir .. "/cov"),
        q(root .. "/tests/coverage/flcov.lua")) })
    assert.are.equal(0, status, err)
    local _, listing = sh("cat " .. q(dir .. "/cov") .. "/*.cov")
    assert.matches("freightliner/cmd/version%.lua\t%d+\t%d+", listing)
  end)

  it("reports a broken FREIGHTLINER_LUA_INIT and exits 1", function()
    local status, _, err = helpers.run({ "version" }, { env = "FREIGHTLINER_LUA_INIT=@/nonexistent/init.lua" })
    assert.are.equal(1, status)
    assert.matches("FREIGHTLINER_LUA_INIT: cannot open /nonexistent/init.lua", err)
  end)
end)
