-- core.created.many: creation times of many images, looked up on threads,
-- against a real registry (the lookup behind latest_by: created).
local fl = require("freightliner")
local core = require("freightliner.core")
local json = require("freightliner.json")
local regtest = require("regtest")

describe("core.created.many", function()
  local info, reg
  setup(function()
    info = regtest.start("plain")
    regtest.seed(info, "small")
    reg = assert(fl.registry(info.host))
  end)
  teardown(function()
    if reg then reg:close() end
    regtest.stop(info)
  end)

  -- the config's created, read one request at a time through fl.registry
  local function reference(repo, tag)
    local m = assert(reg:manifest(repo .. ":" .. tag))
    if m.parsed.manifests then m = assert(reg:manifest(repo .. "@" .. m.parsed.manifests[1].digest)) end
    return json.decode(assert(reg:blob(repo, m.parsed.config.digest))).created
  end

  it("gives each image's config time, at any concurrency; an index gives its first child's", function()
    local tags = { "v1.0", "v1.1", "v2.0", "latest" }
    for _, n in ipairs({ 1, 3, 8 }) do
      local times, errors = core.created.many(reg.ep, "project-a/app", tags, { concurrency = n })
      assert.same({}, errors)
      for _, t in ipairs(tags) do assert.equal(reference("project-a/app", t), times[t]) end
    end
    local times = core.created.many(reg.ep, "project-a/multi", { "v1" })
    assert.equal(reference("project-a/multi", "v1"), times.v1)
  end)

  it("costs two GETs per image and three per index", function()
    local before = reg:stats().requests
    core.created.many(reg.ep, "project-a/web", { "v1.0", "v1.1", "v2.0", "latest" }, { concurrency = 4 })
    assert.equal(8, reg:stats().requests - before)
    before = reg:stats().requests
    core.created.many(reg.ep, "project-b/dmulti", { "v1" })
    assert.equal(3, reg:stats().requests - before)
  end)

  it("reports a missing image per reference, not for the whole call", function()
    local times, errors = core.created.many(reg.ep, "project-a/app", { "v1.0", "nope" })
    assert.is_string(times["v1.0"])
    assert.is_nil(times.nope)
    assert.is_string(errors.nope)
    assert.same({}, select(1, core.created.many(reg.ep, "project-a/app", {})))
  end)

  it("raises on misuse", function()
    assert.has_error(function() core.created.many(reg.ep, "project-a/app", { 1 }) end)
    assert.has_error(function() core.created.many(reg.ep, "project-a/app", {}, { concurrency = 0 }) end)
    assert.has_error(function() core.created.many(nil, "r", {}) end)
  end)
end)
