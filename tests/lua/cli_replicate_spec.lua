-- The replication commands through the real binary against real registries.
local h = require("helpers")
local regtest = require("regtest")
local fl = require("freightliner")
local json = require("freightliner.json")

describe("freightliner replicate", function()
  local src, dst
  setup(function()
    src = regtest.start("plain")
    dst = regtest.start("plain")
    regtest.seed(src, "small")
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(dst)
  end)

  it("needs a source and a destination", function()
    local status, _, err = h.run({ "replicate", "--source", src.host })
    assert.equal(2, status)
    assert.matches("--destination", err, 1, true)
    status, _, err = h.run({ "replicate", "--source", src.host, "--destination", dst.host })
    assert.equal(2, status)
    assert.matches("--repository", err, 1, true)
    status, _, err = h.run({ "replicate", "--bogus" })
    assert.equal(2, status)
    assert.matches("unknown option '--bogus'", err, 1, true)
  end)

  it("prints the plan with --dry-run and writes nothing", function()
    local status, out = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
      "--repository-pattern", "project-a/*", "--tag-filter", "v1*", "--dry-run", "--no-progress" })
    assert.equal(0, status)
    assert.matches("copy%s+" .. src.host:gsub("%.", "%%.") .. "/project%-a/app:v1%.0", out)
    assert.matches("skip", out)
    assert.matches("nothing was written", out, 1, true)
    assert.same({}, assert(fl.registry(dst.host):catalog()))
    status, out = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
      "--repository", "project-a/web", "--dry-run", "--format", "json" })
    assert.equal(0, status)
    local plan = assert(json.decode(out))
    assert.equal(4, plan.totals.copy)
  end)

  it("copies the tags the filter selects and writes real metrics", function()
    local metrics = os.tmpname()
    local status, out = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
      "--repository-pattern", "project-*/*", "--tag-filter", "v*", "--exclude-tag", "v2*",
      "--parallel-workers", "4", "--metrics-file", metrics, "--no-progress" })
    assert.equal(0, status, out)
    local d = assert(fl.registry(dst.host))
    local tags = assert(d:tags("project-a/web"))
    table.sort(tags)
    assert.same({ "v1.0", "v1.1" }, tags)
    assert.is_nil(d:head("project-a/web:latest"))
    local m = assert(json.decode(h.slurp(metrics)))
    assert.equal(8, m.images_replicated) -- app, web, tool x v1.0, v1.1 + multi:v1, dmulti:v1
    assert.equal(0, m.images_failed)
    -- the destination registry's own storage is the judge: every blob it
    -- holds arrived in this run, each once (shared layers are mounted);
    -- Distribution keeps manifests in the blob store too, so those (the
    -- repositories' manifest revisions) are left out
    local store = dst.dir .. "/data/docker/registry/v2"
    local _, revs = regtest.sh("find " .. store .. "/repositories"
      .. " -path '*/_manifests/revisions/sha256/*' -type d -printf '%f\\n'")
    local manifests = {}
    for hex in revs:gmatch("%x+") do manifests[hex] = true end
    local _, sizes = regtest.sh("find " .. store .. "/blobs -path '*/sha256/*/data' -printf '%s %h\\n'")
    local bytes, blobs = 0, 0
    for n, dir in sizes:gmatch("(%d+) (%S+)") do
      if not manifests[dir:match("(%x+)$")] then
        bytes, blobs = bytes + tonumber(n), blobs + 1
      end
    end
    assert.is_true(blobs > 0, sizes)
    assert.equal(bytes, m.bytes_transferred)
    assert.equal(blobs, m.blobs_copied)
    assert.truthy(m.destinations[dst.host .. "/project-a/web"])
    assert.equal(2, m.destinations[dst.host .. "/project-a/web"].images_replicated)
    assert.matches("^%d+T%d+Z%-%x+$", m.run_id)
    assert.equal(0, #m.failed_images)
    -- the same run again: everything up to date, nothing copied
    status = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
      "--repository-pattern", "project-*/*", "--tag-filter", "v*", "--exclude-tag", "v2*",
      "--metrics-file", metrics })
    assert.equal(0, status)
    m = assert(json.decode(h.slurp(metrics)))
    assert.equal(0, m.images_replicated)
    assert.equal(8, m.images_up_to_date)
    assert.equal(0, m.bytes_transferred)
    os.remove(metrics)
  end)

  it("copies one image given as SRC_IMAGE DST_IMAGE, with a prefix-free name", function()
    local status = h.run({ "replicate", src.host .. "/project-b/tool:latest",
      dst.host .. "/single/tool:latest", "--no-progress" })
    assert.equal(0, status)
    assert.truthy(fl.registry(dst.host):head("single/tool:latest"))
  end)

  it("copies a tree under a prefix with replicate-tree", function()
    local status, out = h.run({ "replicate-tree", src.host .. "/project-b", dst.host .. "/backup/b",
      "--tag-filter", "latest" })
    assert.equal(0, status, out)
    assert.truthy(fl.registry(dst.host):head("backup/b/tool:latest"))
  end)

  it("exits 1 naming a nonexistent repository", function()
    local status, out, err = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
      "--repository", "no/such-repo" })
    assert.equal(1, status)
    assert.matches("no/such-repo", out .. err, 1, true)
  end)

  it("exits 1 quickly naming an unreachable registry", function()
    local t0 = os.time()
    local status, out, err = h.run({ "replicate", "--source", "127.0.0.1:1", "--destination", dst.host,
      "--repository", "x/y" })
    assert.equal(1, status)
    assert.matches("127.0.0.1:1", out .. err, 1, true)
    assert.is_true(os.time() - t0 < 30)
  end)
end)
