-- The Lua API as a script uses it, against real registries: task handles,
-- tagged scheduler yields, tasks blocked forever, nested fl.parallel,
-- strict option keys, fl.configure after the engine started,
-- fl.replicate.run restoring what it changes, fl.endpoint.
local fl = require("freightliner")
local copy = require("freightliner.copy")
local regtest = require("regtest")
local helpers = require("helpers")

describe("the Lua API", function()
  local src, dst
  setup(function()
    src = regtest.start("plain")
    regtest.seed(src, "small")
    dst = regtest.start("plain")
  end)
  teardown(function()
    copy.shutdown()
    regtest.stop(src)
    regtest.stop(dst)
  end)

  it("fl.spawn returns a task; task:wait() gives its results, or nil, message, ERROR", function()
    local t1 = fl.spawn(function(a, b) return a + b, "x" end, 2, 3)
    local t2 = fl.spawn(function() error("boom") end)
    assert.equal("ready", t1:status())
    assert.same({ 5, "x" }, { t1:wait() })
    local r, msg, code = t2:wait()
    assert.is_nil(r)
    assert.matches("boom", msg)
    assert.equal("ERROR", code)
    fl.wait() -- t2's error was collected by :wait(): nothing to raise
    -- a task waiting for another, around a real copy
    local c = fl.spawn(function()
      return fl.copy(src.host .. "/project-a/app:v1.0", dst.host .. "/api/app:v1.0")
    end)
    local outer = fl.spawn(function()
      local res = c:wait()
      return res and res.digest
    end)
    fl.wait()
    assert.matches("^sha256:", outer:wait())
    assert.equal("done", c:status())
  end)

  it("an error in a task nobody waits for is raised by fl.wait", function()
    fl.spawn(function() error("unobserved") end)
    assert.has_error(fl.wait, nil)
    local ok, err = pcall(function()
      fl.spawn(function() error("second") end)
      fl.wait()
    end)
    assert.is_false(ok)
    assert.matches("second", err)
  end)

  it("a task yielding a number itself is not taken for a copy job", function()
    local steps = {}
    local t = fl.spawn(function()
      for i = 1, 3 do
        steps[#steps + 1] = i
        coroutine.yield(1) -- would have looked like engine job 1
      end
      local r = assert(fl.copy(src.host .. "/project-a/app:v1.1", dst.host .. "/api/app:v1.1"))
      return r.digest
    end)
    -- a user coroutine inside a task, yielding numbers to its own resumer
    local u = fl.spawn(function()
      local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
      return gen() + gen() + gen()
    end)
    fl.wait()
    assert.same({ 1, 2, 3 }, steps)
    assert.matches("^sha256:", t:wait())
    assert.equal(6, u:wait())
  end)

  it("fl.wait reports tasks blocked forever on each other", function()
    local a, b
    a = fl.spawn(function() return b:wait() end)
    b = fl.spawn(function() return a:wait() end)
    local ok, err = pcall(fl.wait)
    assert.is_false(ok)
    assert.matches("2 tasks are blocked forever", err)
    assert.matches("task %d+ waits for task %d+", err)
    fl.wait() -- and the scheduler is usable again
  end)

  it("nested fl.parallel raises before any worker is spawned", function()
    local ran = 0
    local t = fl.spawn(function()
      return fl.parallel({ 1, 2, 3 }, function() ran = ran + 1 end)
    end)
    local r, msg = t:wait()
    assert.is_nil(r)
    assert.matches("cannot be nested", msg)
    assert.equal(0, ran)
  end)

  it("unknown option keys raise, naming the closest valid key", function()
    local cases = {
      { function() fl.registry(src.host, { ca_fil = "x" }) end, "unknown option 'ca_fil'; did you mean 'ca_file'" },
      { function() fl.registry_options(src.host, { max_atempts = 2 }) end, "did you mean 'max_attempts'" },
      { function() fl.configure({ worker = 2 }) end, "fl.configure: unknown option 'worker'; did you mean 'workers'" },
      { function() fl.copy("a/b:c", "d/e:f", { platform = { "linux/amd64" } }) end, "did you mean 'platforms'" },
      { function() fl.replicate.plan{ source = src.host, destination = dst.host, repositorys = { "x" } } end,
        "did you mean 'repositories'" },
      { function() fl.replicate.run({ items = {} }, { paralel = 2 }) end, "did you mean 'parallel'" },
      { function() fl.parallel({}, function() end, { concurency = 2 }) end, "did you mean 'concurrency'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
    end
  end)

  it("fl.configure after the engine started applies when idle and raises with copies in flight", function()
    assert(fl.copy(src.host .. "/project-a/web:v1.0", dst.host .. "/cfg/web:v1.0"))
    fl.configure({ workers = 3 })
    assert.equal(3, copy.settings().workers)
    assert(fl.copy(src.host .. "/project-a/web:v1.1", dst.host .. "/cfg/web:v1.1"))
    local t1 = fl.spawn(function() return fl.copy(src.host .. "/project-a/web:v2.0", dst.host .. "/cfg/web:v2.0") end)
    local t2 = fl.spawn(function() fl.configure({ workers = 5 }) end)
    assert.is_table((t1:wait()))
    local r, msg = t2:wait()
    assert.is_nil(r)
    assert.matches("cannot change workers with copies in flight", msg)
    assert.equal(3, copy.settings().workers)
  end)

  it("fl.replicate.run restores the settings it changes", function()
    fl.configure({ workers = 2 })
    local before = copy.settings()
    local plan = assert(fl.replicate.plan{ source = src.host, destination = dst.host,
      repositories = { "project-b/tool" }, tags = { include = "v1.0" }, dest_prefix = "restore" })
    local summary = fl.replicate.run(plan, { parallel = 6 })
    assert.equal(0, summary.status)
    assert.same(before, copy.settings())
  end)

  it("fl.endpoint is the store fl.copy uses: its stats count the copies' requests", function()
    local ep = assert(fl.endpoint(src.host))
    local before = ep:stats().requests
    assert(fl.copy(src.host .. "/project-b/tool:v2.0", dst.host .. "/ep/tool:v2.0"))
    assert.is_true(ep:stats().requests > before)
    assert.equal(ep, fl.endpoint(src.host))
    -- docker.io is keyed like the host its API is served from
    local opts = { max_attempts = 1 }
    fl.registry_options("docker.io", opts)
    assert.equal(fl.endpoint("registry-1.docker.io"), copy.store("registry-1.docker.io", opts))
    assert.equal(fl.endpoint("docker.io"), fl.endpoint("registry-1.docker.io"))
  end)

  it("the binary needs no Lua C module from the system (JSON is built in)", function()
    local status, out, err = helpers.run({ "-e", [[
      assert(not pcall(require, "cjson"))
      local json = require("freightliner.json")
      local v = assert(json.decode('{"size":18446744073709,"f":1.5,"n":null,"a":[1,"x/y"]}'))
      assert(math.type(v.size) == "integer" and v.f == 1.5 and v.n == json.null and v.a[2] == "x/y")
      print(json.encode({ a = { 1, 2 }, e = json.array() }), json.encode("a/b\1"), select(3, json.decode("{bad")))
    ]] }, { env = "LUA_CPATH_5_4=/nonexistent/?.so LUA_CPATH=/nonexistent/?.so" })
    assert.equal(0, status, out .. err)
    local encoded = out:match("^(%b{})")
    assert.same({ a = { 1, 2 }, e = {} }, require("freightliner.json").decode(encoded))
    assert.matches('"e":%[%]', encoded)
    assert.equal('\t"a\\/b\\u0001"\tINVALID\n', out:sub(#encoded + 1))
  end)

  it("a script run by the binary: fl.regex, fl.replicate.plan with tag rules and explain, fl.counters", function()
    local script = helpers.write_file(os.tmpname(), [[
local src, dst = arg[1], arg[2]
local re = assert(fl.regex.compile("^v(\\d+)\\.(\\d+)$"))
assert(select(3, re:find("v1.10")) == "1")
local plan = assert(fl.replicate.plan{ source = src, destination = dst, repositories = { "project-a/web" },
  tags = { regex = "^v\\d+\\.\\d+$", latest = 1 }, dest_template = "script/{name}:{tag}-x" })
local e = plan.explain
print(e.candidates, e.selected, #plan.warnings)
local summary = fl.replicate.run(plan, { parallel = 2 })
print(summary.status, summary.images_replicated, fl.counters().images_replicated >= 1)
print(fl.json.encode(fl.json.array()))
]])
    local status, out, err = helpers.run({ "run", script, src.host, dst.host })
    os.remove(script)
    assert.equal(0, status, out .. err)
    assert.equal("4\t1\t0\n0\t1\ttrue\n[]\n", out)
    local reg = assert(fl.registry(dst.host))
    assert.same({ "v2.0-x" }, reg:tags("script/web"))
    reg:close()
  end)
end)
