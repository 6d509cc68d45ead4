-- Every key of a sync file, run through `freightliner sync` (the real
-- binary) against real registries on loopback, checked on the destination
-- registry. Keys the run cannot honour are refused by validate-config with
-- FILE:LINE:COLUMN (the last tests).
local fl = require("freightliner")
local json = require("freightliner.json")
local helpers = require("helpers")
local regtest = require("regtest")

local src, dst, dir

local function sorted(t)
  table.sort(t)
  return t
end

-- The destination's tags of a repository (fl.registry, not the CLI).
local function tags(repo, info)
  local reg = assert(fl.registry((info or dst).host, info and info.ca and {
    ca_file = info.ca, client_cert = info.client_cert, client_key = info.client_key,
    username = info.username, password_env = info.username and "FL_SYNC_SPEC_PW" or nil } or nil))
  local t = reg:tags(repo)
  reg:close()
  return sorted(t or {})
end

local n = 0
local function sync(yaml, ...)
  n = n + 1
  local path = helpers.write_file(string.format("%s/sync%d.yaml", dir, n),
    (yaml:gsub("SRC", src.host):gsub("DST", dst.host)))
  local status, out, err = helpers.run({ "sync", "--config", path, "--no-progress", ... },
    { env = "FL_SYNC_SPEC_PW=" .. helpers.shell_quote(dst.password or "x") })
  return status, out, err, path
end

local function created(repo, tag)
  local reg = assert(fl.registry(src.host))
  local m = assert(reg:manifest(repo .. ":" .. tag))
  local cfg = json.decode(assert(reg:blob(repo, m.parsed.config.digest)))
  reg:close()
  return cfg.created
end

describe("freightliner sync, every key against real registries", function()
  setup(function()
    dir = regtest.tmpdir()
    src = regtest.start("plain")
    regtest.seed(src, "small")
    dst = regtest.start("plain")
    -- more tags: a pre-release, a plain version, a debug build, and a tag
    -- with the same image (and creation time) as v1.0
    for from, to in pairs({ ["v2.0"] = "v2.1.0-rc.1", ["v1.1"] = "1.5.0", ["v1.0"] = "v1.0-debug",
                            ["latest"] = "V3" }) do
      assert(fl.copy(src.host .. "/project-a/app:" .. from, src.host .. "/project-a/app:" .. to))
    end
    assert(fl.copy(src.host .. "/project-a/web:v1.0", src.host .. "/project-a/web:v1.0-copy"))
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(dst)
    if dir then regtest.sh("rm -rf " .. dir) end
  end)

  it("tags.include and tags.exclude (globs)", function()
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: glob }
    tags: { include: ["v1.*", "V*"], exclude: "*-debug" }
]])
    assert.equal(0, status, out .. err)
    assert.same({ "V3", "v1.0", "v1.1" }, tags("glob/project-a/app"))
  end)

  it("tags.regex and tags.exclude_regex: RE2/PCRE syntax (\\d, (?i))", function()
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: re }
    tags:
      regex: '^v\d+\.\d+$'
      exclude_regex: '(?i)^V2'
]])
    assert.equal(0, status, out .. err)
    assert.same({ "v1.0", "v1.1" }, tags("re/project-a/app"))
  end)

  it("tags.semver and tags.include_prerelease", function()
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: semver }
    tags: { semver: ">=1.1 <3" }
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: semverpre }
    tags: { semver: ">=2", include_prerelease: true }
]])
    assert.equal(0, status, out .. err)
    assert.same({ "1.5.0", "v1.1", "v2.0" }, tags("semver/project-a/app"))
    -- (a leading v or V is allowed in a version: V3 is 3.0.0)
    assert.same({ "V3", "v2.0", "v2.1.0-rc.1" }, tags("semverpre/project-a/app"))
  end)

  it("tags.latest by semver and latest_by: created (config blobs; ties by tag)", function()
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/web }
    destination: { registry: DST, prefix: latestsemver }
    tags: { latest: 2 }
  - source: { registry: SRC, repository: project-a/web }
    destination: { registry: DST, prefix: latestcreated }
    tags: { latest: 2, latest_by: created }
  - source: { registry: SRC, repository: project-a/web }
    destination: { registry: DST, prefix: tie }
    tags: { include: "v1.0*", latest: 1, latest_by: created }
  - source: { registry: SRC, repository: project-a/multi }
    destination: { registry: DST, prefix: index }
    tags: { latest: 1, latest_by: created }
]])
    assert.equal(0, status, out .. err)
    assert.same({ "v1.1", "v2.0" }, tags("latestsemver/project-a/web"))
    -- the seed makes "latest" the newest image and v2.0 the next
    assert.is_true(created("project-a/web", "latest") > created("project-a/web", "v2.0"))
    assert.is_true(created("project-a/web", "v2.0") > created("project-a/web", "v1.1"))
    assert.same({ "latest", "v2.0" }, tags("latestcreated/project-a/web"))
    -- v1.0 and v1.0-copy are one image: the greater tag wins, every time
    assert.equal(created("project-a/web", "v1.0"), created("project-a/web", "v1.0-copy"))
    assert.same({ "v1.0-copy" }, tags("tie/project-a/web"))
    -- an index: the creation time of its first child
    assert.same({ "v1" }, tags("index/project-a/multi"))
  end)

  it("tags.digests: pinned images copied by digest", function()
    local reg = assert(fl.registry(src.host))
    local want = assert(reg:head("project-a/web:v2.0")).digest
    reg:close()
    local status, out, err = sync(([[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/web }
    destination: { registry: DST, prefix: pinned }
    tags: { digests: ["%s"] }
]]):format(want))
    assert.equal(0, status, out .. err)
    assert.matches("1 image replicated", err)
    local d = assert(fl.registry(dst.host))
    assert.equal(want, assert(d:head("pinned/project-a/web@" .. want)).digest)
    d:close()
    assert.same({}, tags("pinned/project-a/web"))
  end)

  it("source.repository (a list), repository_pattern, repository_regex; destination template with a tag",
    function()
      local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: [project-a/app, project-b/tool] }
    destination: { registry: DST, template: "list/{name}:{tag}-amd64" }
    tags: { include: v1.0 }
  - source: { registry: SRC, repository_pattern: "project-b/*" }
    destination: { registry: DST, prefix: pattern }
    tags: { include: v1 }
  - source: { registry: SRC, repository_regex: '^project-a/(app|web)$' }
    destination: { registry: DST, prefix: regex }
    tags: { include: latest }
]])
      assert.equal(0, status, out .. err)
      assert.same({ "v1.0-amd64" }, tags("list/app"))
      assert.same({ "v1.0-amd64" }, tags("list/tool"))
      assert.same({ "v1" }, tags("pattern/project-b/dmulti"))
      assert.same({}, tags("pattern/project-b/tool"))
      assert.same({ "latest" }, tags("regex/project-a/app"))
      assert.same({ "latest" }, tags("regex/project-a/web"))
      assert.same({}, tags("regex/project-a/multi"))
    end)

  it("platforms, referrers, and defaults (parallel, platforms, referrers, retry, rate_limit)", function()
    local status, out, err = sync([[
version: 1
defaults:
  parallel: 2
  platforms: [linux/arm64/v8]
  referrers: true
  retry: { max_attempts: 2, base_ms: 10, max_ms: 100 }
  rate_limit: { requests_per_second: 200, max_concurrency: 2 }
sync:
  - source: { registry: SRC, repository: project-a/multi }
    destination: { registry: DST, prefix: plat }
    platforms: [linux/amd64, linux/arm/v7]
  - source: { registry: SRC, repository: project-b/dmulti }
    destination: { registry: DST, prefix: defplat }
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: refs }
    tags: { include: v1.0 }
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: norefs }
    tags: { include: v1.0 }
    referrers: false
]])
    assert.equal(0, status, out .. err)
    local d = assert(fl.registry(dst.host))
    local function archs(ref)
      local out_ = {}
      for _, m in ipairs(assert(d:manifest(ref)).parsed.manifests) do
        out_[#out_ + 1] = m.platform.architecture
      end
      return sorted(out_)
    end
    assert.same({ "amd64", "arm" }, archs("plat/project-a/multi:v1"))
    assert.same({ "arm64" }, archs("defplat/project-b/dmulti:v1"))
    d:close()
    local refs = tags("refs/project-a/app")
    assert.equal(2, #refs) -- v1.0 and its signature
    assert.matches("^sha256%-%x+%.sig$", refs[1])
    assert.same({ "v1.0" }, tags("norefs/project-a/app"))
  end)

  it("registries: insecure, limits, chunk sizes, TLS with a client certificate", function()
    local tls = regtest.start("mtls")
    finally(function() regtest.stop(tls) end)
    local path = ([[
version: 1
registries:
  src: { host: "%s", insecure: true, max_concurrency: 2, requests_per_second: 100 }
  dst:
    host: "%s"
    chunk_size: 64KiB
    resume_chunk_size: 0
    tls: { ca_file: "%s", client_cert: "%s", client_key: "%s", verify: true, pinned_pubkey: "%s" }
sync:
  - source: { registry: src, repository: project-a/app }
    destination: { registry: dst, prefix: tls }
    tags: { include: PIN_TAG }
]])
    -- the server key's pin, as curl takes it: sha256//base64(sha256(SPKI DER))
    local _, pin = regtest.sh(string.format("openssl x509 -in %s/server.crt -pubkey -noout | "
      .. "openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64", tls.dir))
    pin = "sha256//" .. pin:gsub("%s+", "")
    local function run(with_pin, tag)
      helpers.write_file(dir .. "/tls.yaml", path:format(src.host, tls.host, tls.ca, tls.client_cert,
        tls.client_key, with_pin):gsub("PIN_TAG", tag))
      return helpers.run({ "sync", "--config", dir .. "/tls.yaml", "--no-progress" })
    end
    local status, out, err = run(pin, "v1.1")
    assert.equal(0, status, out .. err)
    assert.same({ "v1.1" }, tags("tls/project-a/app", tls))
    -- another key's pin: refused, nothing copied
    status, out, err = run("sha256//" .. string.rep("A", 43) .. "=", "v2.0")
    assert.equal(1, status, out .. err)
    assert.matches("TLS", out .. err)
    assert.same({ "v1.1" }, tags("tls/project-a/app", tls))
  end)

  it("registries.credentials: password_file and credential_helper", function()
    local auth = regtest.start("htpasswd")
    finally(function() regtest.stop(auth) end)
    local pw = helpers.write_file(dir .. "/pw", auth.password .. "\n")
    local helper = helpers.write_file(dir .. "/docker-credential-flspec", string.format(
      "#!/bin/sh\nread host\nprintf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$host\"\n",
      auth.username, auth.password))
    regtest.sh("chmod +x " .. helper)
    local path = helpers.write_file(dir .. "/creds.yaml", ([[
version: 1
registries:
  byfile: { host: "%s", credentials: { username: %s, password_file: pw } }
  byhelper: { host: "%s", credentials: { credential_helper: flspec } }
sync:
  - source: { registry: SRC, repository: project-b/tool }
    destination: { registry: byfile, prefix: file }
    tags: { include: v1.0 }
]]):gsub("SRC", src.host):format(auth.host, auth.username, "localhost:" .. auth.host:match(":(%d+)$")))
    local status, out, err = helpers.run({ "sync", "--config", path, "--no-progress" })
    assert.equal(0, status, out .. err)
    -- the helper registry (same server, another name) through the helper
    local path2 = helpers.write_file(dir .. "/creds2.yaml", ([[
version: 1
registries:
  byhelper: { host: "localhost:%s", credentials: { credential_helper: flspec } }
sync:
  - source: { registry: "%s", repository: project-b/tool }
    destination: { registry: byhelper, prefix: helper }
    tags: { include: v1.1 }
]]):format(auth.host:match(":(%d+)$"), src.host))
    status, out, err = helpers.run({ "sync", "--config", path2, "--no-progress" },
      { env = "PATH=" .. helpers.shell_quote(dir .. ":" .. os.getenv("PATH")) })
    assert.equal(0, status, out .. err)
    local reg = assert(fl.registry(auth.host, { username = auth.username, password_file = pw }))
    assert.same({ "v1.0" }, sorted(assert(reg:tags("file/project-b/tool"))))
    assert.same({ "v1.1" }, sorted(assert(reg:tags("helper/project-b/tool"))))
    reg:close()
  end)

  it("policy: filter and rename at plan time; on_done raising marks the image failed", function()
    local policy = helpers.write_file(dir .. "/policy.lua", [[
return {
  filter = function(image) return image.tag ~= "v1.1", "no v1.1" end,
  rename = function(repo, tag) return "renamed/" .. repo, tag .. "-r" end,
  on_done = function(result)
    if result.source:match(":v2%.0$") then error("refusing " .. result.destination) end
  end,
}
]])
    local metrics = dir .. "/policy-metrics.json"
    local checkpoint = dir .. "/policy-checkpoint"
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-b/tool }
    destination: { registry: DST }
    tags: { include: "v*" }
    policy: policy.lua
]], "--metrics-file", metrics, "--checkpoint-file", checkpoint)
    assert(policy)
    assert.equal(1, status, out .. err)
    assert.same({ "v1.0-r", "v2.0-r" }, tags("renamed/project-b/tool"))
    assert.matches("policy hook on_done raised: [^\n]*policy%.lua:5: refusing", err)
    assert.matches("1 image replicated, 0 up to date, 1 failed", err)
    local m = json.decode(helpers.slurp(metrics))
    assert.equal(1, m.images_failed)
    assert.equal(1, m.images_replicated)
    -- the checkpoint recorded the failed image: resume tries only that one
    status, out, err = helpers.run({ "resume", "--checkpoint-file", checkpoint, "--no-progress" })
    assert.equal(1, status, out .. err)
    assert.matches("policy hook on_done raised: [^\n]*refusing [^\n]*:v2%.0%-r", err)
    assert.matches("0 images replicated, [01] up to date, 1 failed", err)
  end)

  it("hooks: one failure record for retry and on_error; a plan-time hook that raises fails its image", function()
    local log = dir .. "/hooks.jsonl"
    helpers.write_file(dir .. "/hooks.lua", ([[
local json = require("freightliner.json")
local function record(kind, x)
  local f = assert(io.open("%s", "a"))
  f:write(json.encode({ kind = kind, record = x }), "\n")
  f:close()
end
return {
  filter = function(image)
    if image.tag == "v1.1" then error("no filter for " .. image.tag) end
    return true
  end,
  retry = function(failure)
    record("retry", failure)
    if failure.attempt < 2 then return 0.01 end
  end,
  on_error = function(failure) record("on_error", failure) end,
}
]]):format(log))
    local metrics = dir .. "/hooks-metrics.json"
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-b/tool }
    destination: { registry: DST, prefix: hooks }
    tags:
      include: ["v1.*"]
      digests: ["sha256:0000000000000000000000000000000000000000000000000000000000000000"]
    policy: hooks.lua
]], "--metrics-file", metrics)
    assert.equal(1, status, out .. err)
    -- v1.0 copied; v1.1's filter raised (file and line named); the pin is missing
    assert.same({ "v1.0" }, tags("hooks/project-b/tool"))
    assert.matches("policy hook filter raised: [^\n]*hooks%.lua:9: no filter for v1%.1", err)
    assert.matches("1 image replicated, 0 up to date, 1 failed", err)
    local records = {}
    for line in helpers.slurp(log):gmatch("[^\n]+") do records[#records + 1] = json.decode(line) end
    assert.equal(3, #records)
    local want_image = src.host .. "/project-b/tool@sha256:" .. string.rep("0", 64)
    for i, kind in ipairs({ "retry", "retry", "on_error" }) do
      local r = records[i]
      assert.equal(kind, r.kind)
      assert.equal(want_image, r.record.image)
      assert.equal(want_image, r.record.source)
      assert.equal(dst.host .. "/hooks/project-b/tool@sha256:" .. string.rep("0", 64), r.record.destination)
      assert.equal("NOT_FOUND", r.record.code)
      assert.is_string(r.record.message)
    end
    assert.same({ 1, 2, 2 }, { records[1].record.attempt, records[2].record.attempt, records[3].record.attempt })
    -- the metrics count every image that failed: the missing pin and v1.1,
    -- whose filter raised at plan time
    local m = json.decode(helpers.slurp(metrics))
    assert.equal(2, m.images_failed)
    assert.equal(2, #m.failed_images)
  end)

  it("a policy with an unknown hook is refused before anything is copied", function()
    helpers.write_file(dir .. "/typo.lua", "return { on_erorr = function() end }\n")
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-b/tool }
    destination: { registry: DST, prefix: typo }
    policy: typo.lua
]])
    assert.equal(2, status, out .. err)
    assert.matches("unknown hook 'on_erorr' %(did you mean 'on_error'%?%)", err)
    assert.same({}, tags("typo/project-b/tool"))
  end)

  it("warns about a rule that selects nothing; --strict makes it exit 1; the dry run explains", function()
    local yaml = [[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: strict }
    tags: { include: "v*", regex: '^release-\d+$' }
]]
    local status, out, err = sync(yaml)
    assert.equal(0, status, out .. err)
    assert.matches("warn [^\n]*sync%[1%] %(line 3%): rule tags%.regex selects nothing", err)
    status, out, err = sync(yaml, "--strict")
    assert.equal(1, status, out .. err)
    status, out, err = sync(yaml, "--dry-run", "--format", "json")
    assert.equal(0, status, out .. err)
    local doc = json.decode(out)
    local e = doc.explain[1]
    assert.equal(1, e.repositories)
    assert.equal(0, e.selected)
    assert.is_true(e.candidates >= 8)
    local by_rule = {}
    for _, d in ipairs(e.dropped) do by_rule[d.rule] = (by_rule[d.rule] or 0) + 1 end
    assert.is_true(by_rule["tags.include"] >= 1) -- "latest", "1.5.0", "V3"
    assert.is_true(by_rule["tags.regex"] >= 4)
    status, out = sync(yaml, "--dry-run")
    assert.equal(0, status)
    assert.matches("rule tags%.regex%s+0 of %d+ passed", out)
    assert.matches("skip%s+[^\n]*project%-a/app:latest %(tags%.include: not matched", out)
    assert.same({}, tags("strict/project-a/app"))
  end)

  it("validate-config points at the offending character of a regex", function()
    local path = helpers.write_file(dir .. "/badre.yaml", [[
version: 1
sync:
  - source: { registry: 127.0.0.1:1, repository_regex: "^team/(a|b" }
    destination: { registry: 127.0.0.1:2 }
    tags:
      exclude_regex: 'ab[c'
]])
    local status, out = helpers.run({ "validate-config", path })
    assert.equal(2, status)
    assert.matches(path:gsub("%p", "%%%0") .. ":3:67: sync%[1%]%.source%.repository_regex: invalid regular "
      .. "expression '%^team/%(a|b' at character 11: missing closing parenthesis", out)
    assert.matches(":6:27: sync%[1%]%.tags%.exclude_regex: invalid regular expression 'ab%[c'", out)
    status = helpers.run({ "sync", "--config", path })
    assert.equal(2, status)
  end)

  it("names are data: a listed 'x@sha256:...' is refused as a tag, never followed as a reference", function()
    local layout = dir .. "/names/layout"
    assert(fl.copy(src.host .. "/project-a/app:v1.0", "oci:" .. layout .. ":v1"))
    -- the layout's index names the image a second time as "x@sha256:<hex>"
    local index = json.decode(helpers.slurp(layout .. "/index.json"))
    local twin = {}
    for k, v in pairs(index.manifests[1]) do twin[k] = v end
    twin.annotations = { ["org.opencontainers.image.ref.name"] = "x@sha256:" .. string.rep("a", 64) }
    index.manifests[2] = twin
    helpers.write_file(layout .. "/index.json", json.encode(index))
    local out_dir = dir .. "/names/out"
    local status, out, err = helpers.run({ "replicate", "--source", "oci:" .. layout, "--repository", "image",
      "--destination", "oci:" .. out_dir, "--exclude-tag", "x", "--no-progress" })
    assert.equal(0, status, out .. err)
    assert.matches("1 image replicated", err)
    assert.matches("warn[^\n]*lists 1 name that is not a tag, left out %(first: 'x@sha256:a+' is not a valid tag",
      err)
    -- no sibling layout "out:x@sha256", and no tag x in the layout
    local ls = select(2, regtest.sh("ls " .. dir .. "/names"))
    assert.same({ "layout", "out" }, sorted((function()
      local t = {}
      for name in ls:gmatch("%S+") do t[#t + 1] = name end
      return t
    end)()))
    local written = json.decode(helpers.slurp(out_dir .. "/index.json"))
    assert.equal(1, #written.manifests)
    assert.equal("v1", written.manifests[1].annotations["org.opencontainers.image.ref.name"])
  end)
end)
