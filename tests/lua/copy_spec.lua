-- fl.copy and the engine between real registries (and OCI layouts):
-- single images of both media types, whole and filtered indexes, mounts,
-- re-runs, a corrupted source, concurrency through fl.parallel, and an
-- interrupted copy finished by a second run.
local fl = require("freightliner")
local regtest = require("regtest")
local h = require("helpers")

-- Requests fl.copy's own endpoint for `host` has made so far.
local function requests(host)
  local store = assert(require("freightliner.copy").store(host))
  return store:stats().requests
end

-- Run fn; return the requests it made to the source and the destination.
local function count_requests(src_host, dst_host, fn)
  local s0, d0 = requests(src_host), requests(dst_host)
  fn()
  return requests(src_host) - s0, requests(dst_host) - d0
end

local function by_tag(seeded, repo, tag)
  for _, img in ipairs(seeded.images) do
    if img.repository == repo and img.tag == tag then return img end
  end
end

describe("fl.copy between registries", function()
  local src, dst, seeded, dreg
  setup(function()
    src = regtest.start("plain")
    dst = regtest.start("plain")
    seeded = regtest.seed(src, "small")
    dreg = assert(fl.registry(dst.host))
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(dst)
  end)

  it("copies a Docker schema 2 image byte for byte", function()
    local img = by_tag(seeded, "project-a/app", "v1.0")
    assert.equal("application/vnd.docker.distribution.manifest.v2+json", img.media_type)
    local r = assert(fl.copy(src.host .. "/project-a/app:v1.0", dst.host .. "/project-a/app:v1.0"))
    assert.equal(img.digest, r.digest)
    assert.equal(img.digest, r.source_digest)
    assert.equal(3, r.blobs_copied) -- config + 2 layers
    assert.equal(1, r.manifests_pushed)
    assert.is_false(r.up_to_date)
    assert.is_true(r.bytes > 2 * 64 * 1024)
    local m = assert(dreg:manifest("project-a/app:v1.0"))
    assert.equal(img.media_type, m.media_type)
    assert.equal(img.digest, m.digest)
  end)

  it("copies an OCI image, skipping blobs the destination has", function()
    local img = by_tag(seeded, "project-a/app", "v1.1")
    assert.equal("application/vnd.oci.image.manifest.v1+json", img.media_type)
    local r = assert(fl.copy(src.host .. "/project-a/app:v1.1", dst.host .. "/project-a/app:v1.1"))
    assert.equal(img.digest, r.digest)
    assert.equal(1, r.blobs_skipped) -- the shared base layer is already there
    assert.equal(2, r.blobs_copied)
  end)

  it("does nothing on a re-run but one request per side", function()
    local r
    local s, d = count_requests(src.host, dst.host, function()
      r = assert(fl.copy(src.host .. "/project-a/app:v1.0", dst.host .. "/project-a/app:v1.0"))
    end)
    assert.is_true(r.up_to_date)
    assert.equal(0, r.blobs_copied)
    assert.equal(0, r.manifests_pushed)
    assert.equal(0, r.bytes)
    assert.equal(1, s) -- the manifest HEAD by tag (no GET: not a pull on Docker Hub)
    assert.equal(1, d) -- the manifest HEAD
  end)

  it("mounts blobs from another repository of the destination", function()
    local r
    local s, d = count_requests(src.host, dst.host, function()
      r = assert(fl.copy(src.host .. "/project-a/app:v1.0", dst.host .. "/mirror/app:v1.0"))
    end)
    assert.equal(3, r.blobs_mounted)
    assert.equal(0, r.blobs_copied)
    assert.equal(0, r.bytes)
    assert.is_true(fl.counters().blobs_mounted >= 3)
    -- the engine knows where it put the blobs: no blob HEADs, no blob GETs
    assert.equal(2, s) -- the manifest HEAD by tag, then its GET by digest
    assert.equal(5, d) -- manifest HEAD, 3 mounts, manifest PUT
  end)

  it("counts blobs the destination had (pushed by someone else) as skipped", function()
    local sreg = assert(fl.registry(src.host))
    local m = assert(sreg:manifest("project-b/dmulti:v1"))
    local child = assert(sreg:manifest("project-b/dmulti@" .. m.parsed.manifests[1].digest))
    local blobs = { child.parsed.config }
    for _, l in ipairs(child.parsed.layers) do blobs[#blobs + 1] = l end
    for _, b in ipairs(blobs) do -- behind the engine's back: it does not know
      assert(dreg:put_blob("elsewhere/dmulti", assert(sreg:blob("project-b/dmulti", b.digest))))
    end
    sreg:close()
    local r = assert(fl.copy(src.host .. "/project-b/dmulti@" .. child.digest,
      dst.host .. "/elsewhere/dmulti:child"))
    -- a blob the engine placed elsewhere earlier is mounted; the rest are
    -- found by the upload's first request and skipped
    assert.is_true(r.blobs_skipped >= 1)
    assert.equal(#blobs, r.blobs_skipped + r.blobs_mounted)
    assert.equal(0, r.blobs_copied)
    assert.equal(0, r.bytes)
  end)

  it("copies a whole multi-arch index, children first", function()
    local img = by_tag(seeded, "project-a/multi", "v1")
    local r = assert(fl.copy(src.host .. "/project-a/multi:v1", dst.host .. "/project-a/multi:v1"))
    assert.equal(img.digest, r.digest)
    assert.equal(4, r.manifests_pushed)
    local m = assert(dreg:manifest("project-a/multi:v1"))
    for _, child in ipairs(m.parsed.manifests) do
      assert.truthy(dreg:head("project-a/multi@" .. child.digest))
    end
  end)

  it("copies a platform subset as a new index", function()
    local img = by_tag(seeded, "project-a/multi", "v1")
    local r = assert(fl.copy(src.host .. "/project-a/multi:v1", dst.host .. "/subset/multi:v1",
      { platforms = { "linux/arm64" } }))
    assert.is_true(r.index_rewritten)
    assert.are_not.equal(img.digest, r.digest)
    assert.equal(img.digest, r.source_digest)
    local m = assert(dreg:manifest("subset/multi:v1"))
    assert.equal(r.digest, m.digest)
    assert.equal(1, #m.parsed.manifests)
    assert.equal("arm64", m.parsed.manifests[1].platform.architecture)
    assert.truthy(dreg:head("subset/multi@" .. m.parsed.manifests[1].digest))
    -- a platform nothing matches is an error, and nothing is pushed
    local ok, msg, code = fl.copy(src.host .. "/project-a/multi:v1", dst.host .. "/subset/none:v1",
      { platforms = { "windows/amd64" } })
    assert.is_nil(ok)
    assert.equal("NOT_FOUND", code)
    assert.matches("platform", msg)
  end)

  it("copies a Docker manifest list", function()
    local img = by_tag(seeded, "project-b/dmulti", "v1")
    local r = assert(fl.copy(src.host .. "/project-b/dmulti:v1", dst.host .. "/project-b/dmulti:v1"))
    assert.equal(img.digest, r.digest)
    assert.equal("application/vnd.docker.distribution.manifest.list.v2+json",
      dreg:head("project-b/dmulti:v1").media_type)
  end)

  it("copies cosign signatures with --referrers (tag scheme)", function()
    local r = assert(fl.copy(src.host .. "/project-a/app:v1.0", dst.host .. "/signed/app:v1.0",
      { referrers = true }))
    assert.equal(1, r.referrers_copied)
    local refs = assert(dreg:referrers("signed/app:v1.0"))
    assert.equal(1, #refs)
  end)

  it("copies many images concurrently with fl.parallel", function()
    local items = {}
    for _, img in ipairs(seeded.images) do
      if img.repository:match("^project%-b/tool") then items[#items + 1] = img end
    end
    local results = fl.parallel(items, function(img)
      return assert(fl.copy(src.host .. "/" .. img.repository .. ":" .. img.tag,
        dst.host .. "/par/" .. img.repository .. ":" .. img.tag))
    end, { concurrency = 4 })
    assert.equal(#items, #results)
    for i, r in ipairs(results) do assert.equal(items[i].digest, r.digest) end
  end)

  it("completes copies whose registry objects are closed while they run", function()
    -- the jobs hold their own references to the endpoints (an ASan build
    -- sees any use after free)
    local sreg, d2 = assert(fl.registry(src.host)), assert(fl.registry(dst.host))
    local jobs = {}
    for _, img in ipairs(seeded.images) do
      if img.repository == "project-a/app" and img.tag then
        jobs[#jobs + 1] = assert(fl.submit({ registry = sreg, repository = img.repository, tag = img.tag },
          { registry = d2, repository = "closed/" .. img.repository, tag = img.tag }))
        jobs[#jobs].want = img.digest
      end
    end
    sreg:close()
    d2:close()
    collectgarbage()
    for _, job in ipairs(jobs) do
      local r = assert(job:wait())
      assert.equal(job.want, r.digest)
    end
  end)

  it("cancels one job (job:cancel) and leaves the others; later jobs run", function()
    local a = assert(fl.submit(src.host .. "/project-a/app:v2.0", dst.host .. "/cancel1/app:v2.0"))
    local b = assert(fl.submit(src.host .. "/project-a/web:v1.0", dst.host .. "/cancel1/web:v1.0"))
    b:cancel() -- false only if it had ended already (it rarely has)
    local ra = assert(a:wait())
    assert.equal(by_tag(seeded, "project-a/app", "v2.0").digest, ra.digest)
    local rb, _, code = b:wait()
    assert.is_true(rb ~= nil or code == "CANCELLED")
    assert.is_false(b:cancel()) -- collected: nothing to cancel
    local again = assert(fl.copy(src.host .. "/project-a/web:v1.0", dst.host .. "/cancel1/web:v1.0"))
    assert.equal(by_tag(seeded, "project-a/web", "v1.0").digest, again.digest)
  end)

  it("exposes every default as core.defaults", function()
    local d = require("freightliner.core").defaults
    assert.equal(5, d.attempts)
    assert.equal(5, d.max_attempts)
    assert.equal(8, d.workers)
    assert.equal(60, d.retry_after_max)
    assert.is_true(d.image_workers >= 1)
    local ok, err = pcall(fl.configure, { wokers = 3 })
    assert.is_false(ok)
    assert.matches("fl.configure: unknown option 'wokers'; did you mean 'workers'?", err, 1, true)
  end)

  it("round-trips through an OCI layout directory", function()
    local dir = regtest.tmpdir()
    local r = assert(fl.copy(src.host .. "/project-a/multi:v1", "oci:" .. dir .. ":v1"))
    local back = assert(fl.copy("oci:" .. dir .. ":v1", dst.host .. "/fromoci/multi:v1"))
    assert.equal(r.digest, back.digest)
    local ok = regtest.sh("skopeo inspect --raw oci:" .. dir .. ":v1 >/dev/null")
    assert.is_true(ok)
    regtest.sh("rm -rf " .. dir)
  end)

  it("reports a missing source image as NOT_FOUND, naming it", function()
    local ok, msg, code = fl.copy(src.host .. "/project-a/app:nope", dst.host .. "/x/app:nope")
    assert.is_nil(ok)
    assert.equal("NOT_FOUND", code)
    assert.matches("project-a/app", msg, 1, true)
  end)

  it("commits nothing when the source serves a corrupted blob", function()
    local m = assert(fl.registry(src.host):manifest("project-a/web:v2.0"))
    local layer = m.parsed.layers[#m.parsed.layers].digest
    local hex = layer:sub(8)
    local path = string.format("%s/data/docker/registry/v2/blobs/sha256/%s/%s/data", src.dir, hex:sub(1, 2), hex)
    local f = assert(io.open(path, "r+b"))
    f:seek("set", 100)
    f:write("\0\1\2\3")
    f:close()
    local ok, msg, code = fl.copy(src.host .. "/project-a/web:v2.0", dst.host .. "/corrupt/tool:v2.0")
    assert.is_nil(ok)
    assert.equal("DIGEST_MISMATCH", code)
    assert.matches(layer, msg, 1, true)
    assert.is_false(dreg:blob_exists("corrupt/tool", layer))
    local head, _, hcode = dreg:head("corrupt/tool:v2.0")
    assert.is_nil(head)
    assert.equal("NOT_FOUND", hcode)
  end)
end)

describe("an interrupted copy", function()
  local src, dst
  setup(function()
    src = regtest.start("plain")
    dst = regtest.start("plain")
    regtest.seed(src, "big", "--big-size " .. 160 * 1024 * 1024)
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(dst)
  end)

  it("exits 143 on SIGTERM, leaves no tag, and a second run completes", function()
    local script = h.write_file(os.tmpname() .. ".lua", string.format([[
      local r, msg, code = fl.copy("%s/big/layer:v1", "%s/big/layer:v1")
      -- the script itself says nothing about signals: 143 must come from
      -- the binary, which notices the SIGTERM
      if not r then io.stderr:write(msg, " ", code, "\n") return 1 end
      print(r.digest)
    ]], src.host, dst.host))
    -- start; once the destination holds part of the big layer, SIGTERM
    local cmd = string.format([[%s run %s & pid=$!
      for i in $(seq 200); do
        if [ -n "$(find %s/data -path '*_uploads*' -name data -size +4M 2>/dev/null)" ]; then break; fi
        sleep 0.02
      done
      kill -TERM $pid; wait $pid; echo status=$?]], h.shell_quote(h.bin), script, dst.dir)
    local _, out = regtest.sh(cmd)
    assert.equal("143", out:match("status=(%d+)"), out)
    local dreg = assert(fl.registry(dst.host))
    assert.is_nil(dreg:head("big/layer:v1")) -- no tag points at an incomplete image
    local status2, out2 = h.run({ "run", script })
    assert.equal(0, status2)
    assert.equal(assert(fl.registry(src.host):head("big/layer:v1")).digest .. "\n", out2)
    os.remove(script)
  end)
end)
