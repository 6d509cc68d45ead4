-- inspect, list-tags and catalog: usage errors, and real answers from real
-- registries (plain HTTP, Basic auth, TLS with a private CA) seeded by the
-- e2e harness, plus an OCI layout.
local h = require("helpers")
local regtest = require("regtest")
local cjson = require("cjson")

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("inspect, list-tags, catalog: usage", function()
  it("are listed in --help and have their own help", function()
    local status, out = h.run({ "--help" })
    assert.equal(0, status)
    for _, name in ipairs({ "validate-config", "inspect", "list-tags", "catalog", "repl" }) do
      assert.matches("\n  " .. name:gsub("%-", "%%-") .. " ", out)
    end
    for _, name in ipairs({ "inspect", "list-tags", "catalog" }) do
      status, out = h.run({ "help", name })
      assert.equal(0, status)
      assert.matches("usage: freightliner " .. name, out, 1, true)
      assert.matches("--password-env VAR", out, 1, true)
    end
  end)

  it("exit 2 on usage errors", function()
    local cases = {
      { { "inspect" }, "inspect takes one image reference" },
      { { "inspect", "a", "b" }, "inspect takes one image reference" },
      { { "inspect", "127.0.0.1:5000/a:v1", "--raw", "--config" }, "give --raw or --config, not both" },
      { { "inspect", "127.0.0.1:5000/a:v1", "--format", "yaml" }, "unknown format 'yaml' (expected text or json)" },
      { { "inspect", "Bad Ref" }, "invalid reference" },
      { { "inspect", "--frobnicate", "x" }, "unknown option '--frobnicate'" },
      { { "list-tags" }, "list-tags takes one repository" },
      { { "list-tags", "127.0.0.1:5000/team/app:v1" }, "must not include a tag" },
      { { "catalog" }, "catalog takes one registry (host[:port])" },
      { { "catalog", "127.0.0.1:5000/team" }, "must be a host[:port], not a repository path" },
      { { "catalog", "h:1", "--username" }, "option '--username' needs a value" },
    }
    for _, c in ipairs(cases) do
      local status, out, err = h.run(c[1])
      assert.equal(2, status, table.concat(c[1], " "))
      assert.equal("", out)
      assert.matches(c[2], err, 1, true)
      assert.matches("see 'freightliner help " .. c[1][1] .. "'", err, 1, true)
    end
  end)

  it("exit 1 with the message and code when the registry fails", function()
    local status, out, err = h.run({ "inspect", "127.0.0.1:1/team/app:v1" })
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^freightliner: .*127%.0%.0%.1:1.* %(UNREACHABLE%)\n$", err)
    status, out, err = h.run({ "list-tags", "oci:/nonexistent/layout" })
    assert.equal("", out)
    assert.equal(1, status)
    assert.matches("%(NOT_FOUND%)\n$", err)
  end)
end)

describe("inspect, list-tags, catalog against a plain registry", function()
  local info, seeded, host
  local by_ref = {}
  setup(function()
    info = regtest.start("plain")
    seeded = regtest.seed(info, "small")
    host = info.host
    for _, img in ipairs(seeded.images) do by_ref[img.repository .. ":" .. img.tag] = img end
  end)
  teardown(function() regtest.stop(info) end)

  it("catalog lists repositories, sorted, by pattern, as JSON", function()
    local status, out = h.run({ "catalog", host })
    assert.equal(0, status)
    assert.same({ "project-a/app", "project-a/multi", "project-a/web", "project-b/dmulti", "project-b/tool" },
      lines(out))
    status, out = h.run({ "catalog", host, "--pattern", "project-b/*" })
    assert.equal(0, status)
    assert.same({ "project-b/dmulti", "project-b/tool" }, lines(out))
    status, out = h.run({ "catalog", host, "--format", "json", "--pattern", "nothing/*" })
    assert.equal(0, status)
    local doc = cjson.decode(out)
    assert.equal(host, doc.registry)
    assert.same({}, doc.repositories)
    assert.matches('"repositories":[]', out, 1, true)
  end)

  it("list-tags lists tags, sorted, as text and JSON", function()
    local status, out = h.run({ "list-tags", host .. "/project-a/web" })
    assert.equal(0, status)
    assert.equal("latest\nv1.0\nv1.1\nv2.0\n", out)
    status, out = h.run({ "list-tags", "--format=json", host .. "/project-a/web" })
    assert.equal(0, status)
    assert.same({ repository = host .. "/project-a/web", tags = { "latest", "v1.0", "v1.1", "v2.0" } },
      cjson.decode(out))
    local err
    status, out, err = h.run({ "list-tags", host .. "/project-a/missing" })
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("%(NOT_FOUND%)\n$", err)
  end)

  it("inspect summarises an image: digest, platform, layers, sizes, labels", function()
    local img = by_ref["project-a/app:v1.0"]
    local status, out = h.run({ "inspect", host .. "/project-a/app:v1.0" })
    assert.equal(0, status)
    assert.matches("Name:        " .. host .. "/project-a/app:v1.0\n", out, 1, true)
    assert.matches("Digest:      " .. img.digest .. "\n", out, 1, true)
    assert.matches("Media type:  " .. img.media_type .. "\n", out, 1, true)
    assert.matches("Platform:    linux/amd64\n", out, 1, true)
    assert.matches("Created:     %d%d%d%d%-%d%d%-%d%dT", out)
    assert.matches("Layers:      2, ", out, 1, true)
    assert.matches("Total size:  ", out, 1, true)
    assert.matches("org.opencontainers.image.version=v1.0", out, 1, true)

    status, out = h.run({ "inspect", host .. "/project-a/app:v1.0", "--format", "json" })
    assert.equal(0, status)
    local doc = cjson.decode(out)
    assert.equal(img.digest, doc.digest)
    assert.equal("image", doc.kind)
    assert.equal(2, #doc.layers)
    assert.equal(doc.layers[1].size + doc.layers[2].size, doc.layers_size)
    assert.equal(doc.layers_size + doc.config.size, doc.total_size)
    assert.equal("v1.0", doc.labels["org.opencontainers.image.version"])
    assert.equal("linux/amd64", doc.platform)
  end)

  it("inspect --raw prints the stored manifest; --config the config", function()
    local img = by_ref["project-a/app:v1.1"]
    local status, out = h.run({ "inspect", "--raw", host .. "/project-a/app:v1.1" })
    assert.equal(0, status)
    assert.equal(img.digest, require("freightliner.core").digest.sha256(out))
    status, out = h.run({ "inspect", "--config", host .. "/project-a/app:v1.1" })
    assert.equal(0, status)
    local cfg = cjson.decode(out)
    assert.equal("amd64", cfg.architecture)
    assert.equal("linux", cfg.os)
    -- by digest too
    status, out = h.run({ "inspect", "--raw", host .. "/project-a/app@" .. img.digest })
    assert.equal(0, status)
    assert.equal(img.digest, require("freightliner.core").digest.sha256(out))
  end)

  it("inspect shows an index's platforms and picks one with --platform", function()
    local idx = by_ref["project-a/multi:v1"]
    local status, out = h.run({ "inspect", host .. "/project-a/multi:v1" })
    assert.equal(0, status)
    assert.matches("Media type:  application/vnd.oci.image.index.v1+json", out, 1, true)
    assert.matches("Platforms:   3\n", out, 1, true)
    for _, child in ipairs(idx.children) do
      assert.matches(child.digest, out, 1, true)
    end
    assert.matches("  linux/arm64/v8 ", out, 1, true)
    local arm
    for _, child in ipairs(idx.children) do
      if child.platform == "linux/arm64/v8" then arm = child end
    end
    status, out = h.run({ "inspect", host .. "/project-a/multi:v1", "--platform", "linux/arm64/v8",
      "--format", "json" })
    assert.equal(0, status)
    local doc = cjson.decode(out)
    assert.equal(arm.digest, doc.digest)
    assert.equal("linux/arm64/v8", doc.platform)
    local err
    status, out, err = h.run({ "inspect", host .. "/project-a/multi:v1", "--config" })
    assert.equal(2, status)
    assert.equal("", out)
    assert.matches("is an index of 3 platforms; choose one with --platform", err, 1, true)
    status, out, err = h.run({ "inspect", host .. "/project-a/multi:v1", "--platform", "plan9/mips" })
    assert.equal("", out)
    assert.equal(1, status)
    assert.matches("the index has no platform plan9/mips (it has: linux/amd64, linux/arm64/v8, linux/arm/v7) "
      .. "(NOT_FOUND)", err, 1, true)
    status, out = h.run({ "inspect", host .. "/project-b/dmulti:v1" })
    assert.equal(0, status)
    assert.matches("application/vnd.docker.distribution.manifest.list.v2+json", out, 1, true)
    assert.matches("Platforms:   2\n", out, 1, true)
  end)

  it("inspect reports a missing tag as NOT_FOUND, exit 1", function()
    local status, out, err = h.run({ "inspect", host .. "/project-a/app:nope" })
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("^freightliner: .*%(NOT_FOUND%)\n$", err)
  end)

  it("inspect and list-tags read OCI layouts", function()
    local dir = regtest.tmpdir()
    local status, _, err = h.run({ "replicate", host .. "/project-a/app:v1.0", "oci:" .. dir .. "/layout:v1",
      "--no-progress" })
    assert.equal(0, status, err)
    local out
    status, out = h.run({ "inspect", "oci:" .. dir .. "/layout:v1" })
    assert.equal(0, status)
    assert.matches("Digest:      " .. by_ref["project-a/app:v1.0"].digest, out, 1, true)
    status, out = h.run({ "list-tags", "oci:" .. dir .. "/layout" })
    assert.equal(0, status)
    assert.equal("v1\n", out)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("inspect, list-tags, catalog with credentials and TLS", function()
  local basic, tls
  setup(function()
    basic = regtest.start("htpasswd")
    regtest.seed(basic, "small")
    tls = regtest.start("tls")
  end)
  teardown(function()
    regtest.stop(basic)
    regtest.stop(tls)
  end)

  it("log in with --username and --password-env", function()
    local env = "FL_TEST_REG_PASSWORD=" .. h.shell_quote(basic.password)
    local status, out, err = h.run({ "list-tags", basic.host .. "/project-a/web", "--username", basic.username,
      "--password-env", "FL_TEST_REG_PASSWORD" }, { env = env })
    assert.equal(0, status, err)
    assert.equal("latest\nv1.0\nv1.1\nv2.0\n", out)
    status, out, err = h.run({ "inspect", basic.host .. "/project-a/web:v1.0" })
    assert.equal("", out)
    assert.equal(1, status)
    assert.matches("%(UNAUTHORIZED%)\n$", err)
    status, out, err = h.run({ "catalog", basic.host, "--username", basic.username,
      "--password-env", "FL_TEST_REG_PASSWORD" }, { env = "FL_TEST_REG_PASSWORD=wrong" })
    assert.equal("", out)
    assert.equal(1, status)
    assert.matches("%(UNAUTHORIZED%)\n$", err)
  end)

  it("trust a private CA with --ca-file, and fail TLS without it", function()
    local status, out, err = h.run({ "catalog", tls.host, "--ca-file", tls.ca })
    assert.equal(0, status, err)
    assert.equal("", out) -- an empty registry
    status, out, err = h.run({ "catalog", tls.host })
    assert.equal("", out)
    assert.equal(1, status)
    assert.matches("%(TLS%)\n$", err)
  end)
end)
