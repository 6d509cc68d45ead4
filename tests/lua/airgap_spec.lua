-- The air-gap workflow through the real binary: `freightliner export` of a
-- sync file into an oci-archive (signatures along, a refused image left out,
-- a contents manifest), `freightliner import` into another registry (every
-- digest checked; signatures still verify there), a re-run that finds
-- everything done, a tampered archive refused, an interrupted export that
-- resumes, and the usage errors.
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

describe("export and import", function()
  local src, site, seeded, dir

  local function run(args)
    local status, out, err = h.run(args)
    return status, out .. err
  end

  local function write_config(path, extra)
    return h.write_file(path, string.format([[
version: 1
%s
sync:
  - source: { registry: %s, repository: [project-a/app, project-a/multi] }
    destination: { registry: unused.example:5000 }
    tags: { include: ["v1.0", "v1.1", "v1"] }
    verify: { keys: [k.pub] }
  - source: { registry: %s, repository: project-b/tool }
    destination: { registry: unused.example:5000 }
    tags: { include: "v2.0" }
]], extra or "", src.host, src.host))
  end

  setup(function()
    src = regtest.start("plain")
    site = regtest.start("plain")
    seeded = regtest.seed(src, "small")
    dir = regtest.tmpdir()
    sh(string.format("exec 2>/dev/null; cd %s && openssl genpkey -algorithm EC "
      .. "-pkeyopt ec_paramgen_curve:P-256 -out k.key && openssl pkey -in k.key -pubout -out k.pub", dir))
    for _, c in ipairs({ { "project-a/app", "v1.1", "tag" }, { "project-a/multi", "v1", "referrers" } }) do
      sh(string.format("python3 %s/e2e/harness/cosign_sign.py --registry %s --repo %s --digest %s "
        .. "--key %s/k.key --where %s", h.root, src.url, c[1], by_tag(seeded, c[1], c[2]).digest, dir, c[3]))
    end
    write_config(dir .. "/sync.yaml")
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(site)
    if dir then sh("rm -rf " .. dir) end
  end)

  it("exports what the sync file selects, signatures included", function()
    local file = dir .. "/site.tar"
    local status, out = run({ "export", "--config", dir .. "/sync.yaml", "--to", "oci-archive:" .. file,
      "--no-progress" })
    -- app:v1.0 carries the seed's fake signature: refused, left out, reported
    assert.equal(1, status, out)
    assert.matches("project%-a/app:v1%.0 .-UNVERIFIED", out)
    assert.matches("wrote " .. file:gsub("%p", "%%%0") .. ": 3 images", out)
    assert.is_true(exists(file))
    assert.is_false(exists(file .. ".parts"))
    local contents = json.decode(sh("tar xOf " .. file .. " freightliner-contents.json"))
    local got = {}
    for _, img in ipairs(contents.images) do got[img.repository .. ":" .. img.tag] = img end
    for _, c in ipairs({ { "project-a/app", "v1.1" }, { "project-a/multi", "v1" }, { "project-b/tool", "v2.0" } }) do
      local img = got[c[1] .. ":" .. c[2]]
      assert.is_not_nil(img, c[1] .. ":" .. c[2])
      assert.equal(by_tag(seeded, c[1], c[2]).digest, img.digest)
      -- skopeo reads the images out of it (Docker schema 2 ones it cannot:
      -- it reads only OCI manifests from a layout)
      if img.media_type:find("oci", 1, true) then
        local raw = sh(string.format("skopeo inspect --raw oci-archive:%s:%s | sha256sum", file, img.name))
        assert.equal(img.digest, "sha256:" .. raw:match("^(%x+)"))
      end
    end
    assert.is_nil(got["project-a/app:v1.0"])
    -- the signatures are in it
    assert(fl.verify("oci-archive:" .. file .. ":" .. got["project-a/app:v1.1"].name, { keys = { dir .. "/k.pub" } }))
    assert(fl.verify("oci-archive:" .. file .. ":" .. got["project-a/multi:v1"].name, { keys = { dir .. "/k.pub" } }))
  end)

  it("imports it with every digest checked, and the signatures still verify", function()
    local status, out = run({ "import", dir .. "/site.tar", "--destination", site.host, "--dest-prefix", "mirror",
      "--verify-key", dir .. "/k.pub", "--no-progress" })
    -- tool:v2.0 is unsigned: --verify-key refuses it at this side too
    assert.equal(1, status, out)
    assert.matches("2 images replicated", out)
    assert.matches("project%-b/tool.-UNVERIFIED", out)
    local reg = assert(fl.registry(site.host))
    for _, c in ipairs({ { "project-a/app", "v1.1" }, { "project-a/multi", "v1" } }) do
      assert.equal(by_tag(seeded, c[1], c[2]).digest, assert(reg:head("mirror/" .. c[1] .. ":" .. c[2])).digest)
      assert(fl.verify(site.host .. "/mirror/" .. c[1] .. ":" .. c[2], { keys = { dir .. "/k.pub" } }))
    end
    -- without keys everything goes; a second run finds it done
    status, out = run({ "import", dir .. "/site.tar", "--destination", site.host, "--dest-prefix", "mirror",
      "--no-progress" })
    assert.equal(0, status, out)
    assert.matches("1 image replicated, 2 up to date, 0 failed", out)
    assert.equal(by_tag(seeded, "project-b/tool", "v2.0").digest,
      assert(reg:head("mirror/project-b/tool:v2.0")).digest)
  end)

  it("refuses a tampered archive and pushes nothing of that image", function()
    local bad = dir .. "/tampered.tar"
    -- flip one byte in the middle of the largest blob (a layer of app:v1.1 or
    -- tool:v2.0), in place
    local py = h.write_file(dir .. "/tamper.py", string.format([[
import tarfile, shutil
shutil.copy(%q, %q)
with tarfile.open(%q) as t:
    m = max((m for m in t.getmembers() if m.name.startswith("blobs/")), key=lambda m: m.size)
with open(%q, "r+b") as f:
    f.seek(m.offset_data + m.size // 2)
    b = f.read(1)
    f.seek(m.offset_data + m.size // 2)
    f.write(bytes([b[0] ^ 0xff]))
]], dir .. "/site.tar", bad, bad, bad))
    sh("python3 " .. py)
    local status, out = run({ "import", bad, "--destination", site.host, "--dest-prefix", "tampered",
      "--no-progress" })
    assert.equal(1, status, out)
    assert.matches("DIGEST_MISMATCH", out)
    -- what failed is not there; the archive file itself is untouched
    local reg = assert(fl.registry(site.host))
    local missing = 0
    for _, c in ipairs({ { "project-a/app", "v1.1" }, { "project-a/multi", "v1" }, { "project-b/tool", "v2.0" } }) do
      if not reg:head("tampered/" .. c[1] .. ":" .. c[2]) then missing = missing + 1 end
    end
    assert.is_true(missing >= 1)
  end)

  it("an interrupted export leaves no archive and resumes", function()
    local file = dir .. "/slow.tar"
    -- slowed down (3 requests a second) so that SIGINT lands mid-way
    local cfg = write_config(dir .. "/slow.yaml", "defaults: { rate_limit: { requests_per_second: 3 } }")
    -- SIGINT once the export has written a blob into its .parts layout (copies
    -- are in flight), not after a fixed time: planning at 3 requests a second
    -- may take long on a loaded machine
    local ok, out = regtest.sh(string.format([[%s export --config %s --to oci-archive:%s --no-progress & pid=$!
      for i in $(seq 600); do [ -n "$(ls %s.parts/blobs/sha256 2>/dev/null)" ] && break; sleep 0.05; done
      kill -INT $pid; wait $pid]], h.bin, cfg, file, file))
    assert.is_falsy(ok, out)
    assert.matches("interrupted", out)
    assert.is_false(exists(file))
    assert.is_true(exists(file .. ".parts/index.json"))
    local st, out2 = run({ "export", "--config", dir .. "/sync.yaml", "--to", "oci-archive:" .. file, "--no-progress" })
    assert.equal(1, st, out2) -- the refused v1.0 again
    assert.matches("wrote .-: 3 images", out2)
    assert.is_true(exists(file))
    assert.is_false(exists(file .. ".parts"))
  end)

  it("reports usage errors with exit 2", function()
    local status, out = run({ "export", "--config", dir .. "/sync.yaml", "--to", "docker-archive:" .. dir .. "/x.tar" })
    assert.equal(2, status)
    assert.matches("export writes an oci%-archive", out)
    status, out = run({ "export", "--to", "oci-archive:" .. dir .. "/x.tar" })
    assert.equal(2, status)
    assert.matches("needs %-%-config", out)
    status, out = run({ "import", dir .. "/site.tar" })
    assert.equal(2, status)
    assert.matches("%-%-destination", out)
    -- an archive that is not an export
    assert(fl.copy(src.host .. "/project-a/app:v1.1", "oci-archive:" .. dir .. "/plain.tar:v1"))
    assert(fl.finish_archives())
    status, out = run({ "import", dir .. "/plain.tar", "--destination", site.host })
    assert.equal(2, status)
    assert.matches("not a Freightliner export", out)
  end)
end)
