-- The registry client against real Distribution registries on loopback:
-- plain HTTP, Basic auth, TLS, mTLS and the token (Bearer) flow, plus the
-- failures a user meets: unreachable hosts, wrong passwords, missing
-- repositories, corrupt content.
local fl = require("freightliner")
local regtest = require("regtest")

local function env_password(name, value)
  -- password_env reads the process environment; set it for this process
  require("freightliner.core").setenv(name, value)
end

describe("registry over plain HTTP", function()
  local info, reg, seeded
  setup(function()
    info = regtest.start("plain")
    seeded = regtest.seed(info, "small")
    reg = assert(fl.registry(info.host, { page_size = 2 }))
  end)
  teardown(function()
    if reg then reg:close() end
    regtest.stop(info)
  end)

  it("pings", function()
    assert.is_true(reg:ping())
  end)

  it("lists the catalog across pages (n=2) and filters it by glob", function()
    local repos = assert(reg:catalog())
    assert.is_true(#repos >= 5)
    local a = assert(reg:catalog{ pattern = "project-a/*" })
    for _, r in ipairs(a) do assert.matches("^project%-a/", r) end
    assert.is_true(#a >= 3)
    assert.equal(1, #assert(reg:catalog{ pattern = "project-a/*", limit = 1 }))
    assert.equal(2, #assert(reg:catalog{ limit = 2 }))
  end)

  it("lists tags across pages", function()
    local tags = assert(reg:tags("project-a/web"))
    table.sort(tags)
    assert.same({ "latest", "v1.0", "v1.1", "v2.0" }, tags)
  end)

  it("gets Docker and OCI manifests verified against their digests", function()
    for _, img in ipairs(seeded.images) do
      if img.repository == "project-a/app" or img.repository == "project-a/web" then
        local m = assert(reg:manifest(img.repository .. ":" .. img.tag))
        assert.equal(img.digest, m.digest)
        assert.equal(img.media_type, m.media_type)
        assert.equal(fl.digest.sha256(m.data), m.digest)
        local by_digest = assert(reg:manifest(img.repository .. "@" .. img.digest))
        assert.equal(m.data, by_digest.data)
        local head = assert(reg:head(img.repository .. ":" .. img.tag))
        assert.equal(img.digest, head.digest)
        assert.equal(#m.data, head.size)
      end
    end
  end)

  it("reads an index and its children", function()
    local m = assert(reg:manifest("project-a/multi:v1"))
    assert.equal("application/vnd.oci.image.index.v1+json", m.media_type)
    assert.equal(3, #m.parsed.manifests)
    local child = assert(reg:manifest("project-a/multi@" .. m.parsed.manifests[1].digest))
    assert.equal("application/vnd.oci.image.manifest.v1+json", child.media_type)
  end)

  it("checks and reads blobs", function()
    local m = assert(reg:manifest("project-a/app:v1.0"))
    local ok, size = reg:blob_exists("project-a/app", m.parsed.config.digest)
    assert.is_true(ok)
    assert.equal(m.parsed.config.size, size)
    local config = assert(reg:blob("project-a/app", m.parsed.config.digest))
    assert.equal(m.parsed.config.digest, fl.digest.sha256(config))
    assert.is_false(reg:blob_exists("project-a/app", fl.digest.sha256("not there")))
  end)

  it("finds cosign signatures through the tag scheme", function()
    local refs, how = assert(reg:referrers("project-a/app:v1.0"))
    assert.equal("tag-schema", how)
    assert.equal(1, #refs)
    assert.equal("sig", refs[1].kind)
  end)

  it("pushes blobs and manifests, then deletes", function()
    local data = "hello " .. os.time()
    local digest = assert(reg:put_blob("scratch/x", data))
    assert.equal(fl.digest.sha256(data), digest)
    local config = assert(reg:put_blob("scratch/x", "{}"))
    local manifest = string.format(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        .. '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},'
        .. '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}',
      config, digest, #data)
    assert.is_true(reg:put_manifest("scratch/x:t1", manifest))
    assert.equal(fl.digest.sha256(manifest), reg:head("scratch/x:t1").digest)
    assert.is_true(reg:delete("scratch/x:t1"))
    local ok, _, code = reg:head("scratch/x:t1")
    assert.is_nil(ok)
    assert.equal("NOT_FOUND", code)
  end)

  it("uploads a blob with one POST and one PUT, and one POST when it is there", function()
    local data = "present " .. os.time()
    local before = reg:stats().requests
    local digest = assert(reg:put_blob("scratch/present", data))
    assert.equal(2, reg:stats().requests - before) -- POST ?mount=&from=self (202), PUT
    before = reg:stats().requests
    assert.equal(digest, reg:put_blob("scratch/present", data))
    assert.equal(1, reg:stats().requests - before) -- the POST answers 201: nothing sent
    assert.equal(#data, select(2, reg:blob_exists("scratch/present", digest)))
  end)

  it("classifies the registry's DIGEST_INVALID by its code: DIGEST_MISMATCH", function()
    -- a blob pushed under a digest it does not have: Distribution answers
    -- 400 {"errors":[{"code":"DIGEST_INVALID",...}]} to the final PUT
    local wrong = "sha256:" .. string.rep("0", 64)
    local ok, msg, code = reg.ep:blob_put("scratch/wrong", "not zeros " .. os.time(), wrong)
    assert.is_nil(ok)
    assert.equal("DIGEST_MISMATCH", code)
    assert.matches("HTTP 400: DIGEST_INVALID: ", msg, 1, true)
    assert.matches("(the content does not match its digest)", msg, 1, true)
    -- and the manifest's code, NOT_FOUND by its status, is named in the message
    ok, msg, code = reg:manifest("project-a/app:no-such-tag")
    assert.is_nil(ok)
    assert.equal("NOT_FOUND", code)
    assert.matches("MANIFEST_UNKNOWN", msg, 1, true)
  end)

  it("returns NOT_FOUND for a missing repository, naming it", function()
    local ok, msg, code = reg:manifest("no/such-repo:v1")
    assert.is_nil(ok)
    assert.equal("NOT_FOUND", code)
    assert.matches("no/such-repo", msg, 1, true)
    ok, msg, code = reg:tags("no/such-repo")
    assert.is_nil(ok)
    assert.equal("NOT_FOUND", code)
    assert.matches("no/such-repo", msg, 1, true)
  end)

  it("refuses bad input before it reaches a URL", function()
    local ok, msg, code = reg:manifest("UPPER/case:v1")
    assert.is_nil(ok)
    assert.equal("INVALID", code)
    assert.matches("repository name", msg)
    ok, msg, code = reg:blob_exists("project-a/app", "sha256:../../etc")
    assert.is_nil(ok)
    assert.matches("invalid digest", msg, 1, true)
    assert.equal("INVALID", code)
  end)

  it("detects a blob whose bytes do not match its digest", function()
    local m = assert(reg:manifest("project-b/tool:v1.0"))
    local layer = m.parsed.layers[1].digest
    local hex = layer:sub(8)
    local path = string.format("%s/data/docker/registry/v2/blobs/sha256/%s/%s/data",
      info.dir, hex:sub(1, 2), hex)
    local f = assert(io.open(path, "r+b"))
    f:write("CORRUPT")
    f:close()
    local ok, msg, code = reg:blob("project-b/tool", layer)
    assert.is_nil(ok)
    assert.equal("DIGEST_MISMATCH", code)
    assert.matches(layer, msg, 1, true)
  end)

  it("detects a manifest whose bytes do not match, and malformed JSON", function()
    -- point a tag at a blob that is not JSON, behind the registry's back
    local junk = "this is { not json"
    local digest = assert(reg:put_blob("project-b/tool", junk))
    local hex = digest:sub(8)
    local base = info.dir .. "/data/docker/registry/v2/repositories/project-b/tool/_manifests"
    assert(regtest.sh(string.format("mkdir -p %s/revisions/sha256/%s %s/tags/junk/current %s/tags/junk/index/sha256/%s",
      base, hex, base, base, hex)))
    for _, p in ipairs({ "/revisions/sha256/" .. hex .. "/link", "/tags/junk/current/link",
                         "/tags/junk/index/sha256/" .. hex .. "/link" }) do
      local f = assert(io.open(base .. p, "wb"))
      f:write(digest)
      f:close()
    end
    local ok, msg, code = reg:manifest("project-b/tool:junk")
    assert.is_nil(ok)
    assert.is_truthy(code == "INVALID" or code == "SERVER" or code == "PROTOCOL")
    assert.is_truthy(msg:find("project-b/tool", 1, true))
  end)
end)

describe("registry failures", function()
  it("reports an unreachable host quickly, naming host and cause", function()
    local reg = assert(fl.registry("127.0.0.1:1", { max_attempts = 2, retry_base_ms = 10 }))
    local t0 = os.time()
    local ok, msg, code = reg:ping()
    assert.is_nil(ok)
    assert.equal("UNREACHABLE", code)
    assert.matches("127.0.0.1:1", msg, 1, true)
    assert.is_true(os.time() - t0 <= 5)
  end)

  it("opens the circuit breaker after repeated failures", function()
    local reg = assert(fl.registry("127.0.0.1:1", { max_attempts = 1, breaker_threshold = 2 }))
    reg:ping()
    reg:ping()
    local ok, msg, code = reg:ping()
    assert.is_nil(ok)
    assert.equal("UNREACHABLE", code)
    assert.matches("marked down", msg, 1, true)
    assert.is_true(reg:stats().breaker_open)
  end)

  it("refuses a plain-text password as misuse", function()
    assert.has_error(function() fl.registry("127.0.0.1:5000", { password = "x" }) end)
  end)

  it("parses registry specs", function()
    local registry = require("freightliner.registry")
    assert.equal("registry-1.docker.io", registry.parse_spec("docker.io").host)
    assert.equal("http", registry.parse_spec("http://10.0.0.1:5000").scheme)
    assert.equal("oci", registry.parse_spec("oci:/srv/x").kind)
    local ok, _, code = registry.parse_spec("host/repo")
    assert.is_nil(ok)
    assert.equal("INVALID", code)
  end)
end)

describe("registry with Basic auth (htpasswd)", function()
  local info
  setup(function()
    info = regtest.start("htpasswd")
    regtest.seed(info, "small")
  end)
  teardown(function() regtest.stop(info) end)

  it("authenticates with password_env", function()
    env_password("FL_TEST_PW", info.password)
    local reg = assert(fl.registry(info.host, { username = info.username, password_env = "FL_TEST_PW" }))
    assert.is_true(reg:ping())
    assert.is_true(#assert(reg:tags("project-a/app")) >= 4)
  end)

  it("authenticates with password_file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(info.password, "\n")
    f:close()
    local reg = assert(fl.registry(info.host, { username = info.username, password_file = path }))
    assert.is_true(reg:ping())
    os.remove(path)
  end)

  it("reports a wrong password as UNAUTHORIZED", function()
    env_password("FL_TEST_BAD", "wrong")
    local reg = assert(fl.registry(info.host, { username = info.username, password_env = "FL_TEST_BAD" }))
    local ok, msg, code = reg:ping()
    assert.is_nil(ok)
    assert.equal("UNAUTHORIZED", code)
    assert.matches(info.host, msg, 1, true)
    assert.is_nil(msg:find("wrong", 1, true)) -- the secret never shows
  end)

  it("reports missing credentials as UNAUTHORIZED", function()
    local reg = assert(fl.registry(info.host))
    local ok, _, code = reg:ping()
    assert.is_nil(ok)
    assert.equal("UNAUTHORIZED", code)
  end)
end)

describe("registry over TLS", function()
  local info
  setup(function()
    info = regtest.start("tls")
    regtest.seed(info, "small")
  end)
  teardown(function() regtest.stop(info) end)

  it("verifies the server with the given CA", function()
    local reg = assert(fl.registry(info.host, { ca_file = info.ca }))
    assert.is_true(reg:ping())
    assert.equal("https://" .. info.host, reg:stats().base_url)
    assert.truthy(reg:manifest("project-a/app:v1.0"))
  end)

  it("refuses an unknown CA with a TLS error", function()
    local reg = assert(fl.registry("https://" .. info.host, { max_attempts = 1 }))
    local ok, msg, code = reg:ping()
    assert.is_nil(ok)
    assert.equal("TLS", code)
    assert.matches("ca_file", msg, 1, true)
  end)

  it("connects without verification only when asked", function()
    local reg = assert(fl.registry("https://" .. info.host, { tls_verify = false }))
    assert.is_true(reg:ping())
  end)
end)

describe("registry with mutual TLS", function()
  local info
  setup(function() info = regtest.start("mtls") end)
  teardown(function() regtest.stop(info) end)

  it("presents the client certificate", function()
    local reg = assert(fl.registry(info.host, { ca_file = info.ca, client_cert = info.client_cert,
                                                client_key = info.client_key }))
    assert.is_true(reg:ping())
  end)

  it("fails without a client certificate", function()
    local reg = assert(fl.registry("https://" .. info.host, { ca_file = info.ca, max_attempts = 1 }))
    local ok, _, code = reg:ping()
    assert.is_nil(ok)
    assert.is_truthy(code == "TLS" or code == "UNREACHABLE" or code == "PROTOCOL")
  end)
end)

describe("registry with token auth (Bearer)", function()
  local info
  setup(function()
    info = regtest.start("token", "--token-ttl 3")
    regtest.seed(info, "small")
  end)
  teardown(function() regtest.stop(info) end)

  it("runs the real Bearer flow and re-authenticates when the token expires", function()
    env_password("FL_TEST_TOKEN_PW", info.password)
    local reg = assert(fl.registry(info.host, { username = info.username, password_env = "FL_TEST_TOKEN_PW" }))
    assert.truthy(reg:manifest("project-a/app:v1.0"))
    -- the token service's own log is the judge: a grant is a 200 to /token
    local function grants()
      local n = 0
      for line in io.lines(info.dir .. "/token.log") do
        if line:match('"[A-Z]+ /token[^"]*" 200') then n = n + 1 end
      end
      return n
    end
    local before = grants()
    assert.is_true(before >= 1, "the first manifest request got no token")
    assert.truthy(reg:manifest("project-a/app:v1.0"))
    assert.equal(before, grants()) -- a live token is reused, not fetched again
    require("freightliner.core").sleep(4.5) -- the token (ttl 3 s) expires
    assert.truthy(reg:manifest("project-a/app:v1.1"))
    assert.equal(before + 1, grants()) -- exactly one new grant after the expiry
  end)

  it("refuses anonymous pulls with UNAUTHORIZED or DENIED", function()
    local reg = assert(fl.registry(info.host))
    local ok, _, code = reg:manifest("project-a/app:v1.0")
    assert.is_nil(ok)
    assert.is_truthy(code == "UNAUTHORIZED" or code == "DENIED")
  end)

  it("refuses wrong credentials at the token service", function()
    env_password("FL_TEST_TOKEN_BAD", "nope")
    local reg = assert(fl.registry(info.host, { username = info.username, password_env = "FL_TEST_TOKEN_BAD" }))
    local ok, msg, code = reg:manifest("project-a/app:v1.0")
    assert.is_nil(ok)
    assert.equal("UNAUTHORIZED", code)
    assert.matches("refused", msg, 1, true)
  end)
end)
