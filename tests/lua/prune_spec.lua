-- Prune through `freightliner sync` and `replicate --prune` against a real
-- registry with deletion enabled (Distribution deletes only by digest):
-- what goes, what stays (other repositories, a manifest another tag still
-- names, signatures of kept images), the prune_max guardrail, the dry run
-- and the tags_deleted metric.
local fl = require("freightliner")
local json = require("freightliner.json")
local helpers = require("helpers")
local regtest = require("regtest")

local src, dst, dir

local function tags(repo)
  local reg = assert(fl.registry(dst.host))
  local t = reg:tags(repo) or {}
  reg:close()
  table.sort(t)
  return t
end

local function sync(yaml, ...)
  local path = helpers.write_file(dir .. "/prune.yaml", (yaml:gsub("SRC", src.host):gsub("DST", dst.host)))
  return helpers.run({ "sync", "--config", path, "--no-progress", ... })
end

local function put(from, to)
  assert(fl.copy(from, to))
end

describe("prune", function()
  setup(function()
    dir = regtest.tmpdir()
    src = regtest.start("plain")
    regtest.seed(src, "small")
    dst = regtest.start("plain")
  end)
  teardown(function()
    regtest.stop(src)
    regtest.stop(dst)
    if dir then regtest.sh("rm -rf " .. dir) end
  end)

  it("deletes what the rules no longer select, in scope only, with its guardrails", function()
    local first = [[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: pr }
    referrers: true
]]
    local status, out, err = sync(first)
    assert.equal(0, status, out .. err)
    local sig = nil
    for _, t in ipairs(tags("pr/project-a/app")) do if t:match("%.sig$") then sig = t end end
    assert.is_string(sig)
    -- at the destination: a tag nobody plans (stale), one more name for
    -- v1.0's manifest (shared), and a repository outside the scope
    put(src.host .. "/project-b/tool:v2.0", dst.host .. "/pr/project-a/app:stale")
    put(dst.host .. "/pr/project-a/app:v1.0", dst.host .. "/pr/project-a/app:alias")
    put(src.host .. "/project-b/tool:v1.0", dst.host .. "/pr/other:stale")
    local second = [[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/app }
    destination: { registry: DST, prefix: pr }
    tags: { exclude: ["v2.0", "sha256-*"] }
    prune: true
    prune_max: PRUNE_MAX
]]
    -- the guardrail: 3 to delete (stale, v2.0, alias) is over prune_max 2
    local metrics = dir .. "/m.json"
    status, out, err = sync(second:gsub("PRUNE_MAX", "2"), "--metrics-file", metrics)
    assert.equal(1, status, out .. err)
    assert.matches("prune would delete 3 of 7 tags in scope, over the limit of 2 %(prune_max%); nothing was deleted",
      err)
    assert.same({ "alias", "latest", sig, "stale", "v1.0", "v1.1", "v2.0" }, tags("pr/project-a/app"))
    -- the dry run lists exactly what would go (and the kept signature)
    status, out, err = sync(second:gsub("PRUNE_MAX", "20"), "--dry-run", "--format", "json")
    assert.equal(0, status, out .. err)
    local going, keeping = {}, {}
    for _, a in ipairs(json.decode(out).actions) do
      if a.action == "prune" then going[#going + 1] = a.dst:match("[^/]+$") end
      if a.action == "keep" then keeping[#keeping + 1] = a.dst:match("[^/]+$") end
    end
    table.sort(going)
    assert.same({ "app:alias", "app:stale", "app:v2.0" }, going)
    assert.same({ "app:" .. sig }, keeping) -- the signature of v1.0, which stays
    assert.same({ "alias", "latest", sig, "stale", "v1.0", "v1.1", "v2.0" }, tags("pr/project-a/app"))
    -- the run: stale and v2.0 go; alias stays (its manifest is v1.0's and
    -- this registry deletes only by digest); pr/other is out of scope
    status, out, err = sync(second:gsub("PRUNE_MAX", "20"), "--metrics-file", metrics)
    assert.equal(0, status, out .. err)
    assert.same({ "alias", "latest", sig, "v1.0", "v1.1" }, tags("pr/project-a/app"))
    assert.same({ "stale" }, tags("pr/other"))
    assert.matches("deleted " .. dst.host:gsub("%p", "%%%0")
      .. "/pr/project%-a/app:stale %(sha256:%x+, by digest%)", err)
    assert.matches("kept [^\n]*app:alias %(manifest sha256:%x+ is also tagged 'v1.0', which stays", err)
    assert.matches("2 tags deleted %(prune%)", err)
    assert.equal(2, json.decode(helpers.slurp(metrics)).tags_deleted)
  end)

  it("--force-prune lifts the limit; replicate --prune prunes the --repository scope", function()
    put(src.host .. "/project-b/tool:v1.0", dst.host .. "/rp/project-a/web:gone1")
    put(src.host .. "/project-b/tool:v1.1", dst.host .. "/rp/project-a/web:gone2")
    local args = { "replicate", "--source", src.host, "--destination", dst.host, "--repository", "project-a/web",
                   "--dest-prefix", "rp", "--tag-filter", "v1.*", "--prune", "--no-progress" }
    local status, out, err = helpers.run(args)
    assert.equal(0, status, out .. err) -- 2 of 4 is within max(10%, 20)
    assert.same({ "v1.0", "v1.1" }, tags("rp/project-a/web"))
    put(src.host .. "/project-b/tool:v1.0", dst.host .. "/fp/project-a/web:gone1")
    put(src.host .. "/project-b/tool:v1.1", dst.host .. "/fp/project-a/web:gone2")
    local yaml = [[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/web }
    destination: { registry: DST, prefix: fp }
    tags: { include: latest }
    prune: true
    prune_max: 0
]]
    status, out, err = sync(yaml)
    assert.equal(1, status, out .. err)
    assert.same({ "gone1", "gone2", "latest" }, tags("fp/project-a/web"))
    status, out, err = sync(yaml, "--force-prune")
    assert.equal(0, status, out .. err)
    assert.same({ "latest" }, tags("fp/project-a/web"))
  end)

  it("does not prune an entry whose source could not be listed", function()
    put(src.host .. "/project-b/tool:v1.0", dst.host .. "/np/no/such:keep")
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: no/such }
    destination: { registry: DST, prefix: np }
    prune: true
]])
    assert.equal(1, status, out .. err)
    assert.matches("not pruned: its plan had 1 error", err)
    assert.same({ "keep" }, tags("np/no/such"))
  end)

  it("one entry never prunes the tags another entry of the run wants; a layout is one scope", function()
    put(src.host .. "/project-b/tool:v1.0", dst.host .. "/two/project-a/web:stale")
    local status, out, err = sync([[
version: 1
sync:
  - source: { registry: SRC, repository: project-a/web }
    destination: { registry: DST, prefix: two }
    tags: { include: "v1.*" }
    prune: true
  - source: { registry: SRC, repository: project-a/web }
    destination: { registry: DST, prefix: two }
    tags: { include: latest }
    prune: true
]])
    assert.equal(0, status, out .. err)
    assert.same({ "latest", "v1.0", "v1.1" }, tags("two/project-a/web"))
    -- an OCI layout: two repositories' tags in one namespace
    local layout = dir .. "/prune-layout"
    put(src.host .. "/project-b/tool:v2.0", "oci:" .. layout .. ":junk")
    local yaml = [[
version: 1
sync:
  - source: { registry: SRC, repository: [project-a/app, project-b/tool] }
    destination: { registry: "oci:LAYOUT", template: "x/{name}:{name}-{tag}" }
    tags: { include: "v1.*" }
    prune: true
]]
    status, out, err = sync((yaml:gsub("LAYOUT", layout)))
    assert.equal(0, status, out .. err)
    local index = json.decode(helpers.slurp(layout .. "/index.json"))
    local names = {}
    for _, m in ipairs(index.manifests) do names[#names + 1] = m.annotations["org.opencontainers.image.ref.name"] end
    table.sort(names)
    assert.same({ "app-v1.0", "app-v1.1", "tool-v1.0", "tool-v1.1" }, names)
  end)
end)
