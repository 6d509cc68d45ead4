-- Signature verification before copy, against real registries: images
-- signed as cosign signs them (e2e/harness/cosign_sign.py, keys made here
-- with openssl: ECDSA P-256, Ed25519, RSA), in the .sig tag and as OCI 1.1
-- referrers; fl.verify, fl.copy's verify option, `replicate --verify-key`
-- and a sync file's `verify:`. Refused: unsigned, wrong key, tampered
-- payload, a signature of another digest, malformed, keyless; an index is
-- checked by its own digest. The real cosign fixtures are checked in
-- tests/c/test_trust.c.
local fl = require("freightliner")
local regtest = require("regtest")
local h = require("helpers")

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

describe("signature verification", function()
  local src, dst, seeded, keys, dreg

  local function sign(repo, tag, key, extra)
    local img = by_tag(seeded, repo, tag)
    sh(string.format("python3 %s/e2e/harness/cosign_sign.py --registry %s --repo %s --digest %s --key %s %s",
      h.root, src.url, repo, img.digest, keys .. "/" .. key .. ".key", extra or ""))
    return img
  end

  local function present(repo, ref)
    return dreg:head(repo .. ":" .. ref) ~= nil
  end

  setup(function()
    src = regtest.start("plain")
    dst = regtest.start("plain")
    seeded = regtest.seed(src, "small")
    dreg = assert(fl.registry(dst.host))
    keys = regtest.tmpdir()
    sh(string.format([[exec 2>/dev/null; cd %s &&
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key &&
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key &&
      openssl genpkey -algorithm ED25519 -out ed.key &&
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key &&
      for k in ec other ed rsa; do openssl pkey -in $k.key -pubout -out $k.pub; done]], keys))
    sign("project-a/app", "v1.1", "ec")                                 -- tag scheme
    sign("project-a/web", "v1.0", "ed", "--where referrers")            -- OCI 1.1 referrer
    sign("project-a/multi", "v1", "rsa")                                -- an index
    sign("project-a/app", "v2.0", "ec", "--tamper")                     -- payload changed
    sign("project-a/web", "v1.1", "ec",                                 -- signs another image
      "--payload-digest " .. by_tag(seeded, "project-a/web", "v1.0").digest)
    sign("project-a/web", "v2.0", "other", "--certificate")             -- keyless-looking
    sign("project-b/tool", "v1.0", "ec", "--garbage")                   -- not base64
    sign("project-b/tool", "v1.1", "ec")                                -- two keys
    sign("project-b/tool", "v1.1", "ed", "--where referrers")
    sign("project-b/tool", "v2.0", "ec")
    -- a child of the Docker manifest list is signed, the list itself is not
    local list = by_tag(seeded, "project-b/dmulti", "v1")
    sh(string.format("python3 %s/e2e/harness/cosign_sign.py --registry %s --repo project-b/dmulti --digest %s --key %s",
      h.root, src.url, list.children[1].digest, keys .. "/ec.key"))
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(dst)
    if keys then sh("rm -rf " .. keys) end
  end)

  local function ref(repo, tag) return src.host .. "/" .. repo .. ":" .. tag end
  local function key(name) return keys .. "/" .. name .. ".pub" end

  describe("fl.verify", function()
    it("accepts a signature in the .sig tag (ECDSA P-256)", function()
      local r = assert(fl.verify(ref("project-a/app", "v1.1"), { keys = { key("ec") } }))
      assert.equal(by_tag(seeded, "project-a/app", "v1.1").digest, r.digest)
      assert.same({ key("ec") }, r.keys)
      assert.equal(1, r.signatures)
      assert.equal("tag", r.where)
    end)

    it("accepts an OCI 1.1 referrer signature (Ed25519)", function()
      local r = assert(fl.verify(ref("project-a/web", "v1.0"), { keys = { key("ed") } }))
      assert.equal("referrers", r.where)
      assert.same({ key("ed") }, r.keys)
    end)

    it("checks an index by its own digest (RSA)", function()
      local idx = by_tag(seeded, "project-a/multi", "v1")
      local r = assert(fl.verify(ref("project-a/multi", "v1"), { keys = { key("rsa") } }))
      assert.equal(idx.digest, r.digest)
      -- a signed child does not make its index signed
      local r2, msg, code = fl.verify(ref("project-b/dmulti", "v1"), { keys = { key("ec") } })
      assert.is_nil(r2)
      assert.equal("UNVERIFIED", code)
      assert.matches("no signature", msg)
    end)

    it("accepts when any one of several keys signed", function()
      local r = assert(fl.verify(ref("project-a/app", "v1.1"),
        { keys = { key("other"), key("rsa"), key("ec") } }))
      assert.same({ key("ec") }, r.keys)
    end)

    it("refuses an unsigned image", function()
      local r, msg, code = fl.verify(ref("project-a/app", "latest"), { keys = { key("ec") } })
      assert.is_nil(r)
      assert.equal("UNVERIFIED", code)
      assert.matches("no signature", msg)
      assert.matches("sha256%-%x+%.sig", msg)
    end)

    it("refuses a signature by another key", function()
      local r, msg, code = fl.verify(ref("project-a/app", "v1.1"), { keys = { key("other") } })
      assert.is_nil(r)
      assert.equal("UNVERIFIED", code)
      assert.matches("does not verify", msg)
    end)

    it("refuses a tampered payload", function()
      local r, msg, code = fl.verify(ref("project-a/app", "v2.0"), { keys = { key("ec") } })
      assert.is_nil(r)
      assert.equal("UNVERIFIED", code)
      assert.matches("payload was changed", msg)
    end)

    it("refuses a valid signature of another digest", function()
      local r, msg, code = fl.verify(ref("project-a/web", "v1.1"), { keys = { key("ec") } })
      assert.is_nil(r)
      assert.equal("UNVERIFIED", code)
      assert.matches("digest mismatch", msg)
      assert.matches(by_tag(seeded, "project-a/web", "v1.0").digest, msg, 1, true)
    end)

    it("refuses a malformed signature", function()
      local r, msg, code = fl.verify(ref("project-b/tool", "v1.0"), { keys = { key("ec") } })
      assert.is_nil(r)
      assert.equal("UNVERIFIED", code)
      assert.matches("malformed signature", msg)
    end)

    it("reports a certificate-based signature as keyless, not as invalid", function()
      local r, msg, code = fl.verify(ref("project-a/web", "v2.0"), { keys = { key("ec") } })
      assert.is_nil(r)
      assert.equal("UNVERIFIED", code)
      assert.matches("keyless signatures are not supported", msg)
      assert.not_matches("does not verify", msg)
    end)

    it("require = all needs a signature by every key", function()
      local r = assert(fl.verify(ref("project-b/tool", "v1.1"),
        { keys = { key("ec"), key("ed") }, require = "all" }))
      table.sort(r.keys)
      assert.same({ key("ec"), key("ed") }, r.keys)
      local r2, msg, code = fl.verify(ref("project-b/tool", "v2.0"),
        { keys = { key("ec"), key("ed") }, require = "all" })
      assert.is_nil(r2)
      assert.equal("UNVERIFIED", code)
      assert.matches("no valid signature by " .. key("ed"), msg, 1, true)
    end)

    it("raises on misuse and fails cleanly on a bad key file", function()
      assert.has_error(function() fl.verify(ref("project-a/app", "v1.1"), { keys = {} }) end)
      assert.has_error(function() fl.verify(ref("project-a/app", "v1.1"), { key = key("ec") }) end)
      assert.has_error(function()
        fl.verify(ref("project-a/app", "v1.1"), { keys = { key("ec") }, require = "most" })
      end)
      local r, msg, code = fl.verify(ref("project-a/app", "v1.1"), { keys = { keys .. "/ec.key" } })
      assert.is_nil(r)
      assert.equal("INVALID", code)
      assert.matches("private key", msg)
      r, msg, code = fl.verify(ref("project-a/app", "v1.1"), { keys = { keys .. "/missing.pub" } })
      assert.is_nil(r)
      assert.equal("NOT_FOUND", code)
      assert.matches("missing.pub", msg)
    end)
  end)

  describe("fl.copy with verify", function()
    it("copies a signed image with its signature", function()
      local img = by_tag(seeded, "project-a/app", "v1.1")
      local r = assert(fl.copy(ref("project-a/app", "v1.1"), dst.host .. "/signed/app:v1.1",
        { verify = { keys = { key("ec") } }, referrers = true }))
      assert.equal(img.digest, r.digest)
      assert.same({ key("ec") }, r.verified.keys)
      assert.equal(1, r.referrers_copied)
      assert.is_true(present("signed/app", "v1.1"))
      assert.is_true(present("signed/app", img.digest:gsub(":", "-") .. ".sig"))
      -- and the copy still verifies at the destination
      assert(fl.verify(dst.host .. "/signed/app:v1.1", { keys = { key("ec") } }))
    end)

    it("copies a referrer-signed image with its referrer", function()
      assert(fl.copy(ref("project-a/web", "v1.0"), dst.host .. "/signed/web:v1.0",
        { verify = { keys = { key("ed") } }, referrers = true }))
      local r = assert(fl.verify(dst.host .. "/signed/web:v1.0", { keys = { key("ed") } }))
      assert.equal("referrers", r.where)
    end)

    it("copies a signed index", function()
      local r = assert(fl.copy(ref("project-a/multi", "v1"), dst.host .. "/signed/multi:v1",
        { verify = { keys = { key("rsa") } } }))
      assert.equal(by_tag(seeded, "project-a/multi", "v1").digest, r.digest)
    end)

    it("verifies inside tasks on threads of their own (fl.parallel)", function()
      local cases = { { "project-a/app", "v1.1", true }, { "project-a/app", "latest", false },
                      { "project-a/multi", "v1", true }, { "project-a/web", "v1.0", true },
                      { "project-a/web", "v1.1", false }, { "project-b/tool", "v1.0", false } }
      local results = fl.parallel(cases, function(c)
        local r, msg, code = fl.copy(ref(c[1], c[2]), dst.host .. "/tasks/" .. c[1] .. ":" .. c[2],
          { verify = { keys = { key("ec"), key("ed"), key("rsa") } } })
        return { ok = r ~= nil, code = code, msg = msg }
      end, { concurrency = 6 })
      for i, c in ipairs(cases) do
        assert.equal(c[3], results[i].ok, c[1] .. ":" .. c[2] .. ": " .. tostring(results[i].msg))
        if not c[3] then assert.equal("UNVERIFIED", results[i].code) end
        assert.equal(c[3], present("tasks/" .. c[1], c[2]))
      end
    end)

    it("does not copy what fails verification", function()
      for _, c in ipairs({ { "project-a/app", "latest" }, { "project-a/app", "v2.0" },
                            { "project-a/web", "v1.1" }, { "project-b/dmulti", "v1" } }) do
        local r, msg, code = fl.copy(ref(c[1], c[2]), dst.host .. "/refused/" .. c[1] .. ":" .. c[2],
          { verify = { keys = { key("ec") } }, referrers = true })
        assert.is_nil(r)
        assert.equal("UNVERIFIED", code, msg)
        assert.is_false(present("refused/" .. c[1], c[2]))
      end
    end)
  end)

  describe("the CLI", function()
    it("replicate --verify-key copies the signed images and reports the others", function()
      local status, _, out = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
        "--repository", "project-a/app", "--dest-prefix", "cli", "--referrers", "--no-progress",
        "--verify-key", key("ec") })
      assert.equal(1, status, out)
      assert.matches("1 image replicated", out)
      assert.matches("project%-a/app:latest .-not verified: no signature .-%(UNVERIFIED%)", out)
      assert.matches("project%-a/app:v2.0 .-payload was changed.-%(UNVERIFIED%)", out)
      assert.is_true(present("cli/project-a/app", "v1.1"))
      assert.is_false(present("cli/project-a/app", "v1.0"))
      assert.is_false(present("cli/project-a/app", "latest"))
      -- signature tags are not images to verify: they came with v1.1
      assert.not_matches("%.sig %->", out)
      local sig = by_tag(seeded, "project-a/app", "v1.1").digest:gsub(":", "-") .. ".sig"
      assert.is_true(present("cli/project-a/app", sig))
    end)

    it("replicate SRC DST --verify-key refuses a wrong key with exit 1", function()
      local status, _, out = h.run({ "replicate", ref("project-a/multi", "v1"),
        dst.host .. "/cli/one:v1", "--verify-key", key("ec"), "--no-progress" })
      assert.equal(1, status, out)
      assert.matches("UNVERIFIED", out)
      assert.is_false(present("cli/one", "v1"))
    end)

    it("a bad --verify-key or --verify-require is a usage error", function()
      local status, _, err = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
        "--repository", "project-a/app", "--verify-key", keys .. "/nope.pub" })
      assert.equal(2, status)
      assert.matches("nope.pub", err)
      status, _, err = h.run({ "replicate", "--source", src.host, "--destination", dst.host,
        "--repository", "project-a/app", "--verify-key", key("ec"), "--verify-require", "most" })
      assert.equal(2, status)
      assert.matches("'any' or 'all'", err)
    end)

    it("sync honours verify: on an entry, with require: all", function()
      local dir = regtest.tmpdir()
      sh(string.format("cp %s %s %s/", key("ec"), key("ed"), dir))
      h.write_file(dir .. "/sync.yaml", string.format([[
version: 1
sync:
  - source: { registry: %s, repository: project-b/tool }
    destination: { registry: %s, prefix: yaml }
    referrers: true
    verify:
      keys: [ec.pub, ed.pub]
      require: all
]], src.host, dst.host))
      local status, _, out = h.run({ "sync", "--config", dir .. "/sync.yaml", "--no-progress" })
      assert.equal(1, status, out)
      assert.matches("1 image replicated", out)
      assert.is_true(present("yaml/project-b/tool", "v1.1"))
      assert.is_false(present("yaml/project-b/tool", "v2.0"))
      assert.matches("no valid signature by " .. dir .. "/ed.pub", out, 1, true)
      -- a missing key file is a configuration error, at its line
      h.write_file(dir .. "/bad.yaml", string.format([[
version: 1
sync:
  - source: { registry: %s, repository: project-b/tool }
    destination: { registry: %s }
    verify: { keys: missing.pub }
]], src.host, dst.host))
      local st2, out2, err = h.run({ "validate-config", dir .. "/bad.yaml" })
      assert.equal(2, st2)
      assert.matches("bad.yaml:5:%d+: sync%[1%]%.verify%.keys: key file 'missing%.pub' not found", out2 .. err)
      sh("rm -rf " .. dir)
    end)
  end)
end)
