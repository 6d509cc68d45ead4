-- freightliner.filters and freightliner.naming: which tags and
-- repositories, and where they go.
local filters = require("freightliner.filters")
local naming = require("freightliner.naming")

local TAGS = { "latest", "v1.0.0", "v1.1.0", "v1.2.0-rc.1", "v1.2.0", "v2.0.0", "2.1", "nightly-2024",
               "v1.0.0-alpine", "sha256-abc.sig" }

local function reasons(skipped)
  local out = {}
  for _, s in ipairs(skipped) do out[s.tag] = s.reason end
  return out
end

describe("filters.tag_selector", function()
  it("with no rules keeps every tag", function()
    local sel = assert(filters.tag_selector({}))
    local kept, skipped, digests = sel("app", TAGS)
    assert.same(TAGS, kept)
    assert.same({}, skipped)
    assert.same({}, digests)
  end)

  it("include and exclude globs, with reasons", function()
    local sel = assert(filters.tag_selector({ include = { "v1.*", "2.*" }, exclude = { "*-rc*", "*alpine" } }))
    local kept, skipped = sel("app", TAGS)
    assert.same({ "v1.0.0", "v1.1.0", "v1.2.0", "2.1" }, kept)
    local why = reasons(skipped)
    assert.equal("not matched by include filters 'v1.*', '2.*'", why.latest)
    assert.equal("excluded by '*-rc*'", why["v1.2.0-rc.1"])
    assert.equal("excluded by '*alpine'", why["v1.0.0-alpine"])
    -- a single glob is a list of one
    kept = assert(filters.tag_selector({ include = "latest" }))("app", TAGS)
    assert.same({ "latest" }, kept)
  end)

  it("regex and exclude_regex (PCRE2)", function()
    local sel = assert(filters.tag_selector({ regex = "^v[0-9]+\\.[0-9]+\\.[0-9]+$", exclude_regex = "^v2" }))
    local kept, skipped = sel("app", TAGS)
    assert.same({ "v1.0.0", "v1.1.0", "v1.2.0" }, kept)
    local why = reasons(skipped)
    assert.equal("does not match regex '^v[0-9]+\\.[0-9]+\\.[0-9]+$'", why.latest)
    assert.equal("excluded by regex '^v2'", why["v2.0.0"])
  end)

  it("semver ranges drop non-versions and pre-releases", function()
    local sel = assert(filters.tag_selector({ semver = ">=1.1 <2.1" }))
    local kept, skipped = sel("app", TAGS)
    assert.same({ "v1.1.0", "v1.2.0", "v2.0.0" }, kept)
    local why = reasons(skipped)
    assert.equal("not a semantic version (semver range '>=1.1 <2.1')", why.latest)
    assert.equal("outside semver range '>=1.1 <2.1'", why["v1.2.0-rc.1"])
    assert.equal("outside semver range '>=1.1 <2.1'", why["v1.0.0"])
    kept = assert(filters.tag_selector({ semver = ">=1.1 <2.1", include_prerelease = true }))("app", TAGS)
    assert.same({ "v1.1.0", "v1.2.0-rc.1", "v1.2.0", "v2.0.0" }, kept)
  end)

  it("latest N by semver keeps the newest, in the given order", function()
    local sel = assert(filters.tag_selector({ latest = 3 }))
    local kept, skipped = sel("app", TAGS)
    assert.same({ "v1.2.0", "v2.0.0", "2.1" }, kept)
    local why = reasons(skipped)
    assert.equal("not a semantic version (latest 3)", why.latest)
    assert.equal("pre-release (latest 3; set include_prerelease to count it)", why["v1.2.0-rc.1"])
    assert.equal("not among the latest 3", why["v1.1.0"])
    -- combined with a filter: latest of what the filter keeps
    kept = assert(filters.tag_selector({ include = { "v1.*" }, latest = 2 }))("app", TAGS)
    assert.same({ "v1.1.0", "v1.2.0" }, kept)
    kept = assert(filters.tag_selector({ latest = 1, include_prerelease = true }))("app",
      { "1.0.0", "2.0.0-rc.1" })
    assert.same({ "2.0.0-rc.1" }, kept)
  end)

  it("latest N by creation time uses the lookup", function()
    local created = { a = "2024-01-03T00:00:00Z", b = "2024-01-01T00:00:00Z", c = "2024-01-02T12:00:00+13:00",
                      d = 1704326400 }
    local asked = {}
    local sel = assert(filters.tag_selector({ latest = 2, latest_by = "created" }, {
      created = function(repo, tag)
        asked[#asked + 1] = repo .. ":" .. tag
        if tag == "broken" then return nil, "no config" end
        return created[tag]
      end,
    }))
    local kept, skipped = sel("app", { "a", "b", "c", "d", "broken" })
    assert.same({ "a", "d" }, kept) -- d: 2024-01-04; c is 2024-01-01T23:00Z
    local why = reasons(skipped)
    assert.equal("creation time unknown (latest 2 by created): no config", why.broken)
    assert.equal("not among the latest 2 by creation time", why.c)
    assert.equal(5, #asked)
    local bad, err = filters.tag_selector({ latest = 2, latest_by = "created" })
    assert.is_nil(bad)
    assert.matches("opts.created", err, 1, true)
  end)

  it("digest pins come back as the third value; alone they select no tag", function()
    local pin = "sha256:" .. string.rep("a", 64)
    local kept, skipped, digests = assert(filters.tag_selector({ digests = { pin } }))("app", { "v1", "v2" })
    assert.same({}, kept)
    assert.same({ pin }, digests)
    assert.equal("only the pinned digests are selected", reasons(skipped).v1)
    kept, skipped, digests = assert(filters.tag_selector({ digests = { pin }, include = { "v1" } }))("app",
      { "v1", "v2" })
    assert.equal("not matched by include filter 'v1'", reasons(skipped).v2)
    assert.same({ "v1" }, kept)
    assert.same({ pin }, digests)
  end)

  it("refuses bad rules with the first problem", function()
    local cases = {
      { { include = { "v[1" } }, "tags.include: unbalanced '[' in glob 'v[1'" },
      { { exclude = { "" } }, "tags.exclude: empty glob" },
      { { regex = "a(b" }, "tags.regex: invalid regular expression 'a(b' at character 4: missing closing parenthesis" },
      { { semver = ">>1" }, "tags.semver: invalid semver range '>>1': unknown operator '>>'" },
      { { latest = 0 }, "tags.latest: latest must be a whole number >= 1, got 0" },
      { { latest = 1.5 }, "tags.latest: latest must be a whole number >= 1, got 1.5" },
      { { latest_by = "size" }, "tags.latest_by: latest_by must be 'semver' or 'created', got 'size'" },
      { { digests = { "sha256:xyz" } }, "tags.digests: " },
    }
    for _, c in ipairs(cases) do
      local sel, msg, code = filters.tag_selector(c[1])
      assert.is_nil(sel)
      assert.equal("INVALID", code)
      assert.equal(c[2], msg:sub(1, #c[2]))
    end
  end)
end)

describe("filters.check_glob", function()
  it("accepts valid globs and explains broken ones", function()
    for _, g in ipairs({ "*", "v1.*", "[abc]*", "[!a]x", "[]a]", "a\\[b", "team/*" }) do
      assert.is_true(filters.check_glob(g), g)
    end
    local cases = {
      { "v[1", "unbalanced '[' in glob 'v[1'" },
      { "a]", "unbalanced ']' in glob 'a]'" },
      { "a\\", "glob 'a\\' ends with a lone '\\'" },
      { "", "empty glob" },
    }
    for _, c in ipairs(cases) do
      local ok, msg = filters.check_glob(c[1])
      assert.is_nil(ok)
      assert.equal(c[2], msg)
    end
  end)
end)

describe("filters.repository_selector", function()
  it("matches by glob, regex, list and exclude", function()
    local g = assert(filters.repository_selector("team/*"))
    assert.is_true(g("team/app"))
    assert.is_true(g("team/sub/app")) -- '*' crosses '/'
    assert.is_false(g("other/app"))
    local r = assert(filters.repository_selector({ regex = "^(team|ops)/[a-z]+$", exclude = { "ops/secret" } }))
    assert.is_true(r("ops/tool"))
    assert.is_false(r("ops/secret"))
    assert.is_false(r("team/a/b"))
    local l = assert(filters.repository_selector({ list = { "a", "b" } }))
    assert.is_true(l("a"))
    assert.is_false(l("c"))
    local bad, msg, code = filters.repository_selector({ regex = "(" })
    assert.is_nil(bad)
    assert.equal("INVALID", code)
    assert.matches("invalid regular expression", msg, 1, true)
    assert.is_nil((filters.repository_selector("team/[x")))
  end)
end)

describe("policy hooks and naming", function()
  it("names destinations by prefix, template, function and rename hook", function()
    local by_prefix = assert(naming.destination({ prefix = "mirror/" }))
    assert.same({ "mirror/team/app", "v1" }, { by_prefix("team/app", "v1") })
    local plain = assert(naming.destination({}))
    assert.same({ "team/app", "v1" }, { plain("team/app", "v1") })
    local t = assert(naming.destination({ template = "backup/{name}" }))
    assert.same({ "backup/app", "v1" }, { t("team/app", "v1") })
    t = assert(naming.destination({ template = "m/{repo}:{tag}-amd64" }))
    assert.same({ "m/team/app", "v1-amd64" }, { t("team/app", "v1") })
    local f = assert(naming.destination({ fn = function(repo, tag) return repo .. "-x", tag .. "x" end }))
    assert.same({ "team/app-x", "v1x" }, { f("team/app", "v1") })
    local moved = assert(naming.destination({ rename_prefix = { from = "team", to = "backup/squad" } }))
    assert.same({ "backup/squad/app", "v1" }, { moved("team/app", "v1") })
    -- a pinned image (no tag): only the repository
    assert.same({ "m/team/app" }, { t("team/app") })
    local renamed = assert(naming.destination({ prefix = "m", rename = function(repo)
      return repo:gsub("^m/team", "m/squad"), nil
    end }))
    assert.same({ "m/squad/app", "v1" }, { renamed("team/app", "v1") })
  end)

  it("refuses bad templates and bad results", function()
    local cases = {
      { { template = "m/{nme}" }, "unknown placeholder '{nme}' in template 'm/{nme}' (known: {repo}, {name}, {tag})" },
      { { template = "m/{repo" }, "unbalanced '{' or '}' in template 'm/{repo'" },
      { { template = "fixed" }, "template 'fixed' names no repository: use {repo} or {name}, "
        .. "or every image lands in the same repository" },
      { { prefix = "a", template = "{repo}" },
        "give at most one of a destination prefix, template, rename_prefix or function" },
    }
    for _, c in ipairs(cases) do
      local n, msg, code = naming.destination(c[1])
      assert.is_nil(n)
      assert.equal("INVALID", code)
      assert.equal(c[2], msg)
    end
    local bad = assert(naming.destination({ fn = function() return "", "v" end }))
    local r, msg = bad("team/app", "v1")
    assert.is_nil(r)
    assert.matches("destination repository for team/app:v1: '' is not a repository name", msg, 1, true)
  end)

  it("filters.timestamp reads RFC 3339 times and numbers", function()
    assert.equal(0, filters.timestamp("1970-01-01T00:00:00Z"))
    assert.equal(1704067200, filters.timestamp("2024-01-01T00:00:00Z"))
    assert.equal(1704067200.5, filters.timestamp("2024-01-01T00:00:00.5Z"))
    assert.equal(1704067200 - 3600, filters.timestamp("2024-01-01T00:00:00+01:00"))
    assert.equal(42, filters.timestamp(42))
    assert.is_nil(filters.timestamp("yesterday"))
  end)
end)
