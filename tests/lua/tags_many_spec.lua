-- ep:tags_many / reg:tags_many (many repositories' tags listed on a few
-- threads) and replicate.plan built on it, against a real registry on
-- loopback and a real OCI layout.
local fl = require("freightliner")
local copy = require("freightliner.copy")
local replicate = require("freightliner.replicate")
local regtest = require("regtest")

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

describe("tags_many", function()
  local info, reg, repos
  setup(function()
    info = regtest.start("plain")
    regtest.seed(info, "small")
    -- page_size 2: each listing follows several Link pages
    reg = assert(fl.registry(info.host, { page_size = 2 }))
    repos = assert(reg:catalog())
  end)
  teardown(function()
    if reg then reg:close() end
    regtest.stop(info)
  end)

  it("gives what :tags gives for each repository, at any concurrency", function()
    assert.is_true(#repos >= 5)
    local want = {}
    for _, r in ipairs(repos) do want[r] = assert(reg:tags(r)) end
    for _, opts in ipairs({ false, { concurrency = 1 }, { concurrency = 3 }, { concurrency = 64 },
                            { concurrency = 1000 }, {} }) do
      local tags, errors = reg:tags_many(repos, opts or nil)
      assert.same(want, tags)
      assert.same({}, errors)
    end
    -- the raw endpoint method is the same
    local tags, errors = reg.ep:tags_many(repos, { concurrency = 2 })
    assert.same(want, tags)
    assert.same({}, errors)
  end)

  it("reports each failing repository in errors and lists the others", function()
    local list = { "project-a/web", "no/such-repo", "project-a/app", "UPPER/case", "project-a/web" }
    local tags, errors = reg:tags_many(list, { concurrency = 4 })
    assert.same({ "project-a/app", "project-a/web" }, keys(tags))
    assert.same({ "UPPER/case", "no/such-repo" }, keys(errors))
    assert.same(assert(reg:tags("project-a/web")), tags["project-a/web"])
    -- the same message and code as :tags gives
    local _, msg, code = reg:tags("no/such-repo")
    assert.equal("NOT_FOUND", code)
    assert.same({ message = msg, code = code }, errors["no/such-repo"])
    assert.matches("no/such-repo", errors["no/such-repo"].message, 1, true)
    assert.equal("INVALID", errors["UPPER/case"].code)
    assert.matches("repository name", errors["UPPER/case"].message)
  end)

  it("lists many repositories, mostly missing, on the full pool", function()
    local list = {}
    for i = 1, 150 do list[i] = string.format("missing/repo-%03d", i) end
    list[#list + 1] = "project-a/app"
    local tags, errors = reg:tags_many(list, { concurrency = 64 })
    assert.same({ "project-a/app" }, keys(tags))
    assert.equal(150, #keys(errors))
    for i = 1, 150 do assert.equal("NOT_FOUND", errors[list[i]].code) end
  end)

  it("returns two empty tables for no repositories", function()
    local tags, errors = reg:tags_many({})
    assert.same({}, tags)
    assert.same({}, errors)
  end)

  it("treats misuse as an error", function()
    assert.has_error(function() reg:tags_many("project-a/app") end,
      "tags_many: expected a list of repository names")
    assert.has_error(function() reg:tags_many({ "project-a/app" }, 4) end)
    for _, bad in ipairs({ 0, -1, 1.5, "4", true }) do
      assert.has_error(function() reg:tags_many({ "project-a/app" }, { concurrency = bad }) end,
        "tags_many: concurrency must be an integer >= 1")
      local ok, err = pcall(reg.ep.tags_many, reg.ep, { "project-a/app" }, { concurrency = bad })
      assert.is_false(ok)
      assert.matches("concurrency must be an integer >= 1", err, 1, true)
    end
    local ok, err = pcall(reg.ep.tags_many, reg.ep, { "project-a/app", 42 })
    assert.is_false(ok)
    assert.matches("repository 2 must be a string, not a number", err, 1, true)
    ok, err = pcall(reg.ep.tags_many, reg.ep, { "project-a/app\0x" })
    assert.is_false(ok)
    assert.matches("NUL", err, 1, true)
    ok, err = pcall(reg.ep.tags_many, reg.ep, nil)
    assert.is_false(ok)
    assert.matches("table expected", err, 1, true)
    local closed = assert(fl.registry(info.host))
    closed:close()
    ok, err = pcall(closed.ep.tags_many, closed.ep, { "project-a/app" })
    assert.is_false(ok)
    assert.matches("endpoint is closed", err, 1, true)
  end)

  it("works over an OCI layout", function()
    local dir = regtest.tmpdir() .. "/layout"
    assert(fl.copy(info.host .. "/project-a/app:v1.0", "oci:" .. dir .. ":v1"))
    assert(fl.copy(info.host .. "/project-a/web:v2.0", "oci:" .. dir .. ":v2"))
    local oci = assert(fl.registry("oci:" .. dir))
    local want = assert(oci:tags("image"))
    assert.same({ "v1", "v2" }, want)
    local tags, errors = oci:tags_many({ "image", "other" }, { concurrency = 2 })
    assert.same({ image = want, other = want }, tags) -- a layout has one tag list
    assert.same({}, errors)
    oci:close()
    regtest.sh("rm -rf " .. dir:gsub("/layout$", ""))
  end)
end)

describe("replicate.plan with concurrent tag listing", function()
  local info
  setup(function()
    info = regtest.start("plain")
    regtest.seed(info, "small")
  end)
  teardown(function() regtest.stop(info) end)

  -- the plan as it was built before tags_many: one :tags call per repository
  local function reference_plan(p, repos)
    local reg = assert(fl.registry(p.source))
    local items, errors = {}, {}
    for _, repo in ipairs(repos) do
      local tags, msg, code = reg:tags(repo)
      if not tags then
        errors[#errors + 1] = { repository = repo, code = code,
          message = string.format("listing tags of %s/%s: %s", p.source, repo, msg) }
      else
        for _, tag in ipairs(tags) do items[#items + 1] = repo .. ":" .. tag end
      end
    end
    reg:close()
    return items, errors
  end

  it("keeps the repository order, the items and the error messages", function()
    local repos = { "project-a/web", "no/such-repo", "project-a/app", "project-a/web", "project-a/multi" }
    local p = { source = info.host, destination = "127.0.0.1:1", repositories = repos, parallel = 3 }
    local plan = assert(replicate.plan(p))
    local want_items, want_errors = reference_plan(p, repos)
    local got = {}
    for _, it in ipairs(plan.items) do got[#got + 1] = it.repository .. ":" .. it.tag end
    assert.same(want_items, got)
    assert.same(want_errors, plan.errors)
    assert.equal("NOT_FOUND", plan.errors[1].code)
    assert.matches("^listing tags of " .. info.host:gsub("%.", "%%.") .. "/no/such%-repo: ",
      plan.errors[1].message)
  end)

  it("gives select_tags its own list for a repeated repository", function()
    local seen = {}
    local plan = assert(replicate.plan{ source = info.host, destination = "127.0.0.1:1",
      repositories = { "project-a/web", "project-a/web" },
      select_tags = function(_, tags)
        seen[#seen + 1] = tags
        local kept = { table.remove(tags, 1) } -- mutates its argument
        return kept, {}
      end })
    assert.equal(2, #seen)
    assert.are_not.equal(seen[1], seen[2])
    assert.equal(plan.items[1].tag, plan.items[2].tag)
  end)

  it("lists through fl.copy's endpoint for the source and leaves it open", function()
    assert(replicate.plan{ source = info.host, destination = "127.0.0.1:1", pattern = "project-a/*" })
    local shared = assert(copy.store(info.host))
    assert.is_true(shared:ping())
    -- other options than fl.copy's: plan opens (and closes) its own
    assert.is_false(copy.store(info.host, { max_attempts = 1 }))
    local plan = assert(replicate.plan{ source = info.host, destination = "127.0.0.1:1",
      pattern = "project-a/*", source_options = { max_attempts = 1 } })
    assert.is_true(#plan.items > 0)
    assert.equal(shared, copy.store(info.host))
    assert.is_true(shared:ping())
  end)

  it("plans from an OCI layout", function()
    local dir = regtest.tmpdir() .. "/layout"
    assert(fl.copy(info.host .. "/project-a/app:v1.0", "oci:" .. dir .. ":v1"))
    local plan = assert(replicate.plan{ source = "oci:" .. dir, destination = "127.0.0.1:1",
      repositories = { "image" } })
    assert.equal(1, #plan.items)
    assert.equal("oci:" .. dir .. ":v1", plan.items[1].src)
    regtest.sh("rm -rf " .. dir:gsub("/layout$", ""))
  end)
end)
