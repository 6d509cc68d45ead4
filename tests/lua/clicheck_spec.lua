-- freightliner.clicheck and freightliner.exitcode: what the CLI checks
-- before any transfer, and the user errors that carry a status.
local clicheck = require("freightliner.clicheck")
local exitcode = require("freightliner.exitcode")

local function user_error(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok)
  assert.truthy(exitcode.is_user_error(e), tostring(e))
  return e
end

describe("freightliner.clicheck", function()
  it("parses image references, with http:// and https:// choosing the scheme", function()
    local r = assert(clicheck.image("127.0.0.1:5000/team/app:v1"))
    assert.equal("registry", r.kind)
    assert.equal("team/app", r.ref.repository)
    assert.is_nil(r.scheme)
    r = assert(clicheck.image("http://127.0.0.1:5000/team/app:v1"))
    assert.equal("http", r.scheme)
    assert.equal("127.0.0.1:5000", r.ref.api_host)
    r = assert(clicheck.image("docker://registry.example/app@sha256:" .. string.rep("a", 64)))
    assert.equal("app", r.ref.repository)
    assert.equal("oci", assert(clicheck.image("oci:/tmp/x:v1")).kind)
  end)

  it("names a registry given where an image or repository was expected", function()
    for _, s in ipairs({ "127.0.0.1:5000", "registry.example.com", "localhost:5000", "http://127.0.0.1:5000" }) do
      local ok, msg = clicheck.image(s)
      assert.is_nil(ok)
      assert.matches("is a registry, not an image: add the repository and tag", msg, 1, true)
      ok, msg = clicheck.repository(s)
      assert.is_nil(ok)
      assert.matches("is a registry, not a repository", msg, 1, true)
    end
    -- a Docker Hub short name is an image
    assert.truthy(clicheck.image("alpine:3.19"))
  end)

  it("refuses malformed references with the parser's reason", function()
    for s, want in pairs({ ["127.0.0.1:5000/Team/App"] = "lowercase", ["h:5000/app:bad:tag"] = "invalid tag",
                           ["@sha256:abc"] = "at least one component", ["oci:"] = "names no OCI layout" }) do
      local ok, msg = clicheck.image(s)
      assert.is_nil(ok, s)
      assert.matches(want, msg, 1, true)
    end
  end)

  it("gives the store spec of a repository, keeping the scheme", function()
    local r = assert(clicheck.repository("http://127.0.0.1:5000/team/app"))
    assert.equal("http://127.0.0.1:5000", r.store)
    assert.equal("team/app", r.repository)
    r = assert(clicheck.repository("127.0.0.1:5000/team/app"))
    assert.equal("127.0.0.1:5000", r.store)
  end)

  it("checks platforms as validate-config does", function()
    for _, p in ipairs({ "linux/amd64", "linux/arm64/v8", "windows/amd64" }) do assert.is_true(clicheck.platform(p)) end
    for _, p in ipairs({ "linux", "linux/", "/amd64", "linux/arm/v7/x", "Linux/AMD64" }) do
      local ok, msg = clicheck.platform(p)
      assert.is_nil(ok, p)
      assert.matches("is not a platform", msg, 1, true)
    end
  end)

  it("type-checks policy hooks at the boundary, naming the file and the hook", function()
    local e = user_error(clicheck.wrap_policy, { rename = 42 }, "p.lua")
    assert.equal(exitcode.USAGE, e.status)
    assert.equal("policy p.lua: 'rename' must be a function, not a number", e.message)
    e = user_error(clicheck.wrap_policy, { renam = function() end }, "p.lua")
    assert.matches("unknown hook 'renam' (did you mean 'rename'?)", e.message, 1, true)
    local hooks = clicheck.wrap_policy({
      rename = function(repo, tag) if repo == "bad" then return 42 end return "m/" .. repo, tag end,
      filter = function(t) if t.tag == "boom" then error("no") end return t.tag ~= "skip" end,
      retry = function(_, attempt) return attempt == 1 and 0.5 or "later" end,
    }, "p.lua")
    assert.same({ "m/app", "v1" }, { hooks.rename("app", "v1") })
    e = user_error(hooks.rename, "bad", "v1")
    assert.matches("policy p.lua: hook 'rename' must return a repository name (a string) or nil; it returned 42 "
      .. "(a number)", e.message, 1, true)
    assert.is_true(hooks.filter({ tag = "v1" }))
    assert.is_false(hooks.filter({ tag = "skip" }))
    -- a hook that raises keeps its own error (its file and line), for
    -- replicate.call_hook to report as that image's failure
    local ok, raised = pcall(hooks.filter, { tag = "boom" })
    assert.is_false(ok)
    assert.is_nil(exitcode.is_user_error(raised))
    assert.matches("clicheck_spec%.lua:%d+: no$", raised)
    assert.equal(0.5, hooks.retry({}, 1))
    e = user_error(hooks.retry, {}, 2)
    assert.matches("hook 'retry' must return a delay in seconds", e.message, 1, true)
    assert.equal(e.message, tostring(e))
  end)
end)

describe("freightliner.exitcode", function()
  it("is one table: 0, 1, 2, 130, 143, printed in the help", function()
    assert.same({ 0, 1, 2, 130, 143 }, { exitcode.OK, exitcode.FAILED, exitcode.USAGE, exitcode.SIGINT,
                                         exitcode.SIGTERM })
    local help = exitcode.help()
    for _, row in ipairs(exitcode.TABLE) do assert.matches("  " .. row[1] .. " ", help, 1, true) end
  end)

  it("raises usage errors that name the command's help", function()
    local e = user_error(exitcode.usage, "bad flag", "sync")
    assert.equal(2, e.status)
    assert.equal("bad flag; see 'freightliner help sync'", e.message)
    assert.is_nil(exitcode.is_user_error("a string"))
  end)
end)

describe("freightliner.report", function()
  it("says 1 image and 2 images", function()
    local report = require("freightliner.report")
    assert.equal("1 image", report.plural(1, "image"))
    assert.equal("0 images", report.plural(0, "image"))
    assert.equal("2 entries", report.plural(2, "entry", "entries"))
  end)
end)
