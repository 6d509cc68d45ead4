-- oci-archive: and docker-archive: against real registries and skopeo:
-- every archive Freightliner writes is read by skopeo (inspect, copy), every
-- archive skopeo writes is read by Freightliner, with identical digests;
-- signatures go into an oci-archive with --referrers and come back out
-- (and still verify); a docker-archive refuses a multi-platform index
-- unless one platform is chosen; an interrupted write resumes.
local fl = require("freightliner")
local regtest = require("regtest")
local h = require("helpers")
local json = require("cjson")

local function by_tag(seeded, repo, tag)
  for _, img in ipairs(seeded.images) do
    if img.repository == repo and img.tag == tag then return img end
  end
  error("no seeded image " .. repo .. ":" .. tag)
end

local function sh(cmd)
  local ok, out = regtest.sh(cmd)
  assert(ok, cmd .. "\n" .. out)
  return out
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("image archives", function()
  local src, dst, seeded, dir, dreg

  local function skopeo_local(args) return sh("skopeo " .. args .. " 2>&1") end
  local function raw_digest(args)
    return "sha256:" .. sh("skopeo inspect --raw " .. args .. " | sha256sum"):match("^(%x+)")
  end
  local function run(args)
    local status, out, err = h.run(args)
    return status, out .. err
  end

  setup(function()
    src = regtest.start("plain")
    dst = regtest.start("plain")
    seeded = regtest.seed(src, "small")
    dreg = assert(fl.registry(dst.host))
    dir = regtest.tmpdir()
    sh(string.format("exec 2>/dev/null; cd %s && openssl genpkey -algorithm ED25519 -out k.key && "
      .. "openssl pkey -in k.key -pubout -out k.pub", dir))
    local sign = "python3 %s/e2e/harness/cosign_sign.py --registry %s --repo %s --digest %s --key %s/k.key %s"
    sh(string.format(sign, h.root, src.url, "project-a/app", by_tag(seeded, "project-a/app", "v1.1").digest, dir, ""))
    sh(string.format(sign, h.root, src.url, "project-a/web", by_tag(seeded, "project-a/web", "v1.0").digest, dir,
      "--where referrers"))
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(dst)
    if dir then sh("rm -rf " .. dir) end
  end)

  local function ref(repo, tag) return src.host .. "/" .. repo .. ":" .. tag end

  describe("oci-archive", function()
    it("writes an archive skopeo inspects and copies, digest for digest", function()
      local img = by_tag(seeded, "project-a/app", "v1.1")
      local file = dir .. "/app.tar"
      local status, out = run({ "replicate", ref("project-a/app", "v1.1"), "oci-archive:" .. file .. ":v1.1",
        "--no-progress" })
      assert.equal(0, status, out)
      assert.is_true(exists(file))
      assert.is_false(exists(file .. ".parts"))
      local info = json.decode(skopeo_local("inspect oci-archive:" .. file))
      assert.equal(img.digest, info.Digest)
      assert.equal(img.digest, raw_digest("oci-archive:" .. file .. ":v1.1"))
      skopeo_local(string.format("copy -q oci-archive:%s:v1.1 oci:%s/layout:v1", file, dir))
      assert.equal(img.digest, raw_digest("oci:" .. dir .. "/layout:v1"))
    end)

    it("writes a multi-arch index whole", function()
      local idx = by_tag(seeded, "project-a/multi", "v1")
      local file = dir .. "/multi.tar"
      local status, out = run({ "replicate", ref("project-a/multi", "v1"), "oci-archive:" .. file,
        "--no-progress" })
      assert.equal(0, status, out)
      assert.equal(idx.digest, raw_digest("oci-archive:" .. file))
      -- and back into a registry
      assert(fl.copy("oci-archive:" .. file, dst.host .. "/back/multi:v1"))
      assert.equal(idx.digest, assert(dreg:head("back/multi:v1")).digest)
    end)

    it("reads what skopeo writes, with the same digests", function()
      -- a Docker schema 2 image: skopeo converts it to OCI as it writes
      local file = dir .. "/skopeo-oci.tar"
      skopeo_local(string.format("copy -q --src-tls-verify=false docker://%s oci-archive:%s:v2",
        ref("project-a/app", "v2.0"), file))
      local want = raw_digest("oci-archive:" .. file .. ":v2")
      local r = assert(fl.copy("oci-archive:" .. file .. ":v2", dst.host .. "/from-skopeo/oci:v2"))
      assert.equal(want, r.digest)
      assert.equal(want, assert(dreg:head("from-skopeo/oci:v2")).digest)
      -- without a tag: the archive's only image
      r = assert(fl.copy("oci-archive:" .. file, dst.host .. "/from-skopeo/oci:only"))
      assert.equal(want, r.digest)
    end)

    it("carries signatures and referrers with --referrers, and they still verify", function()
      local file = dir .. "/signed.tar"
      for _, c in ipairs({ { "project-a/app", "v1.1" }, { "project-a/web", "v1.0" } }) do
        local r = assert(fl.copy(ref(c[1], c[2]), "oci-archive:" .. file .. ":" .. c[1]:gsub("/", "-") .. "-" .. c[2],
          { referrers = true, verify = { keys = { dir .. "/k.pub" } } }))
        assert.is_true(r.referrers_copied >= 1)
      end
      assert(fl.finish_archives())
      -- the signatures are in the archive and verify from there
      assert(fl.verify("oci-archive:" .. file .. ":project-a-app-v1.1", { keys = { dir .. "/k.pub" } }))
      local v = assert(fl.verify("oci-archive:" .. file .. ":project-a-web-v1.0", { keys = { dir .. "/k.pub" } }))
      assert.is_true(v.signatures >= 1)
      -- back out into a registry, with them
      for _, c in ipairs({ { "project-a-app-v1.1", "app" }, { "project-a-web-v1.0", "web" } }) do
        local status, out = run({ "replicate", "oci-archive:" .. file .. ":" .. c[1],
          dst.host .. "/airgap/" .. c[2] .. ":v1", "--referrers", "--verify-key", dir .. "/k.pub", "--no-progress" })
        assert.equal(0, status, out)
        assert(fl.verify(dst.host .. "/airgap/" .. c[2] .. ":v1", { keys = { dir .. "/k.pub" } }))
      end
    end)

    it("names the images when an archive holds several and no tag is given", function()
      local r, msg, code = fl.copy("oci-archive:" .. dir .. "/signed.tar", dst.host .. "/x/y:z")
      assert.is_nil(r)
      assert.equal("INVALID", code)
      assert.matches("holds 2 images %(project%-a%-app%-v1%.1, project%-a%-web%-v1%.0%)", msg)
    end)

    it("refuses what is not an archive, with the file named", function()
      h.write_file(dir .. "/junk.tar", string.rep("x", 2000))
      local r, msg, code = fl.copy("oci-archive:" .. dir .. "/junk.tar", dst.host .. "/x/y:z")
      assert.is_nil(r)
      assert.equal("INVALID", code)
      assert.matches("junk.tar: not a tar archive", msg)
      r, msg, code = fl.copy("oci-archive:" .. dir .. "/missing.tar", dst.host .. "/x/y:z")
      assert.is_nil(r)
      assert.equal("NOT_FOUND", code)
      assert.matches("missing.tar", msg)
    end)

    it("an interrupted write leaves no archive, and the next run resumes", function()
      local file = dir .. "/resume.tar"
      -- a first run copies and stops before finishing (as an interruption does)
      local script = h.write_file(dir .. "/partial.lua", string.format([[
        local fl = require("freightliner")
        assert(fl.copy(%q, %q))
        os.exit(0)
      ]], ref("project-a/app", "v1.1"), "oci-archive:" .. file .. ":v1.1"))
      local status, out = run({ "run", script })
      assert.equal(0, status, out)
      assert.is_false(exists(file))
      assert.is_true(exists(file .. ".parts/index.json"))
      -- the second run finds the blobs there
      local r = assert(fl.copy(ref("project-a/app", "v1.1"), "oci-archive:" .. file .. ":v1.1"))
      assert.equal(0, r.blobs_copied)
      assert(fl.finish_archives())
      assert.is_true(exists(file))
      assert.is_false(exists(file .. ".parts"))
      assert.equal(by_tag(seeded, "project-a/app", "v1.1").digest, raw_digest("oci-archive:" .. file .. ":v1.1"))
    end)
  end)

  describe("docker-archive", function()
    it("writes what skopeo copies (docker save format, layers as tar)", function()
      local img = by_tag(seeded, "project-a/app", "v1.1")
      local file = dir .. "/docker.tar"
      local status, out = run({ "replicate", ref("project-a/app", "v1.1"),
        "docker-archive:" .. file .. ":team/app:v1", "--no-progress" })
      assert.equal(0, status, out)
      local list = json.decode(sh("tar xOf " .. file .. " manifest.json"))
      assert.same({ "team/app:v1" }, list[1].RepoTags)
      assert.equal(2, #list[1].Layers)
      skopeo_local(string.format("copy -q docker-archive:%s dir:%s/fromdocker", file, dir))
      -- the config is the image's own; layers are the diff IDs it names
      local config = json.decode(h.slurp(dir .. "/fromdocker/" .. list[1].Config:gsub("%.json$", "")))
      local src_config = json.decode(assert(fl.registry(src.host)):blob("project-a/app",
        assert(fl.registry(src.host)):manifest("project-a/app:v1.1").parsed.config.digest))
      assert.same(src_config.rootfs.diff_ids, config.rootfs.diff_ids)
      for i, layer in ipairs(list[1].Layers) do
        assert.equal(config.rootfs.diff_ids[i], "sha256:" .. layer:gsub("%.tar$", ""))
      end
      -- Freightliner reads it back with the digest skopeo gives it
      local r = assert(fl.copy("docker-archive:" .. file .. ":team/app:v1", dst.host .. "/docker/app:v1"))
      assert.equal(raw_digest("docker-archive:" .. file), r.digest)
      assert.is_not_nil(img)
    end)

    it("reads what skopeo writes, with the digest skopeo gives it", function()
      local file = dir .. "/skopeo-docker.tar"
      skopeo_local(string.format("copy -q --src-tls-verify=false docker://%s docker-archive:%s:sk/tool:v1",
        ref("project-b/tool", "v1.0"), file))
      local want = raw_digest("docker-archive:" .. file)
      for _, s in ipairs({ "docker-archive:" .. file, "docker-archive:" .. file .. ":sk/tool:v1",
                           "docker-archive:" .. file .. ":docker.io/sk/tool:v1" }) do
        local r = assert(fl.copy(s, dst.host .. "/from-skopeo/tool:v1"))
        assert.equal(want, r.digest)
      end
      assert.equal(want, assert(dreg:head("from-skopeo/tool:v1")).digest)
      local r, msg, code = fl.copy("docker-archive:" .. file .. ":sk/tool:v9", dst.host .. "/x/y:z")
      assert.is_nil(r)
      assert.equal("NOT_FOUND", code)
      assert.matches("sk/tool:v9", msg)
    end)

    it("refuses a multi-platform index unless a platform is chosen", function()
      local file = dir .. "/multi-docker.tar"
      local status, out = run({ "replicate", ref("project-a/multi", "v1"), "docker-archive:" .. file .. ":m:v1",
        "--no-progress" })
      assert.equal(1, status, out)
      assert.matches("single%-platform images; m:v1 is an index of 3 platforms: choose one %(%-%-platform", out)
      status, out = run({ "replicate", ref("project-a/multi", "v1"), "docker-archive:" .. file .. ":m:v1",
        "--platform", "linux/arm64", "--no-progress" })
      assert.equal(0, status, out)
      local info = json.decode(skopeo_local("inspect docker-archive:" .. file))
      assert.equal("arm64", info.Architecture)
    end)
  end)
end)
