-- freightliner.semver: parsing, SemVer 2.0 precedence, ranges.
local semver = require("freightliner.semver")

describe("semver.parse", function()
  it("parses full versions and tolerates v, missing minor and patch", function()
    local cases = {
      { "1.2.3", 1, 2, 3, "", "" },
      { "v1.2.3", 1, 2, 3, "", "" },
      { "V10.20.30", 10, 20, 30, "", "" },
      { "1.2", 1, 2, 0, "", "" },
      { "v2", 2, 0, 0, "", "" },
      { "1.2.3-rc.1", 1, 2, 3, "rc.1", "" },
      { "1.2.3-rc.1+build.5", 1, 2, 3, "rc.1", "build.5" },
      { "1.0.0+20130313144700", 1, 0, 0, "", "20130313144700" },
      { "1.0.0-alpha-a.b-c", 1, 0, 0, "alpha-a.b-c", "" },
      { "1.2-alpine", 1, 2, 0, "alpine", "" },
    }
    for _, c in ipairs(cases) do
      local v = assert(semver.parse(c[1]), c[1])
      assert.same({ c[2], c[3], c[4] }, { v.major, v.minor, v.patch })
      local pre = {}
      for i, id in ipairs(v.prerelease) do pre[i] = tostring(id) end
      assert.equal(c[5], table.concat(pre, "."))
      assert.equal(c[6], table.concat(v.build, "."))
      assert.equal(c[1], v.text)
    end
    assert.equal("1.2.3-rc.1+b", tostring(semver.parse("v1.2.3-rc.1+b")))
    assert.equal("1.2.0", tostring(semver.parse("1.2")))
  end)

  it("refuses what is not a version, with a reason", function()
    local cases = {
      { "latest", "invalid version 'latest': major 'latest' is not a number" },
      { "1.2.3.4", "invalid version '1.2.3.4': expected MAJOR.MINOR.PATCH" },
      { "01.2.3", "invalid version '01.2.3': major '01' has a leading zero" },
      { "1.2.3-01", "invalid version '1.2.3-01': numeric pre-release identifier '01' has a leading zero" },
      { "1.2.3-", "invalid version '1.2.3-': empty pre-release" },
      { "1.2.3-a..b", "invalid version '1.2.3-a..b': empty pre-release identifier" },
      { "1.2.3+", "invalid version '1.2.3+': empty build metadata" },
      { "1.2.3-a_b",
        "invalid version '1.2.3-a_b': pre-release identifier 'a_b' has characters other than [0-9A-Za-z-]" },
      { "", "invalid version '': major '' is not a number" },
      { "99999999999999999999.0.0",
        "invalid version '99999999999999999999.0.0': major '99999999999999999999' is too large" },
    }
    for _, c in ipairs(cases) do
      local v, msg, code = semver.parse(c[1])
      assert.is_nil(v, c[1])
      assert.equal("INVALID", code)
      assert.equal(c[2], msg)
    end
  end)

  it("parse_strict wants MAJOR.MINOR.PATCH and no v", function()
    assert.is_nil(semver.parse_strict("1.2"))
    assert.is_nil(semver.parse_strict("v1.2.3"))
    assert.is_table(semver.parse_strict("1.2.3-rc.1"))
  end)
end)

describe("semver.compare", function()
  it("orders the SemVer 2.0 precedence example", function()
    local list = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                   "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0" }
    for i = 1, #list do
      for j = 1, #list do
        local want = i < j and -1 or (i > j and 1 or 0)
        assert.equal(want, semver.compare(list[i], list[j]), list[i] .. " vs " .. list[j])
      end
    end
  end)

  it("compares numbers numerically and ignores build metadata", function()
    local cases = {
      { "1.0.0", "2.0.0", -1 }, { "2.0.0", "2.1.0", -1 }, { "2.1.0", "2.1.1", -1 },
      { "1.10.0", "1.9.0", 1 }, { "1.0.0+a", "1.0.0+b", 0 }, { "v1.2", "1.2.0", 0 },
      { "1.0.0-2", "1.0.0-10", -1 }, { "1.0.0-10", "1.0.0-a", -1 }, { "1.0.0-rc.1", "1.0.0-rc.1.1", -1 },
    }
    for _, c in ipairs(cases) do
      assert.equal(c[3], semver.compare(c[1], c[2]), c[1] .. " vs " .. c[2])
    end
    assert.is_true(semver.parse("1.0.0-rc.1") < semver.parse("1.0.0"))
    assert.is_true(semver.parse("1.0.0+x") == semver.parse("1.0.0"))
    assert.has_error(function() semver.compare("latest", "1.0.0") end)
  end)

  it("sorts, ties broken by text", function()
    assert.same({ "1.0.0", "1.2", "v1.2.0", "1.10.0", "2.0.0-rc.1", "2.0.0" },
      semver.sort({ "2.0.0", "v1.2.0", "1.10.0", "1.0.0", "2.0.0-rc.1", "1.2" }))
    assert.same({ "2.0.0", "1.0.0" }, semver.sort({ "1.0.0", "2.0.0" }, true))
  end)
end)

describe("semver.range", function()
  local function check(range, yes, no, opts)
    local r = assert(semver.range(range, opts))
    for _, v in ipairs(yes) do assert.is_true(r:test(v), range .. " should match " .. v) end
    for _, v in ipairs(no) do assert.is_false(r:test(v), range .. " should not match " .. v) end
  end

  it("handles comparators, AND and OR", function()
    check(">=1.2 <2", { "1.2.0", "1.9.9", "v1.5" }, { "1.1.9", "2.0.0", "2.0.0-rc.1", "latest" })
    check(">1.2.3", { "1.2.4", "2.0.0" }, { "1.2.3" })
    check(">1.2", { "1.3.0" }, { "1.2.9" })
    check("<=1.2", { "1.2.9", "1.0.0" }, { "1.3.0" })
    check("=1.2.3", { "1.2.3", "v1.2.3+build" }, { "1.2.4" })
    check("1.2.3", { "1.2.3" }, { "1.2.4" })
    check("<1 || >=3", { "0.9.0", "3.0.0" }, { "1.0.0", "2.5.0" })
    check(">= 1.2, < 1.4", { "1.3.0" }, { "1.4.0" })
    check("*", { "0.0.1", "9.9.9" }, { "1.0.0-rc.1" })
  end)

  it("handles ~, ^, x-ranges and hyphen ranges", function()
    check("~1.4", { "1.4.0", "1.4.99" }, { "1.5.0", "1.3.9" })
    check("~1.4.2", { "1.4.2", "1.4.9" }, { "1.4.1", "1.5.0" })
    check("~1", { "1.0.0", "1.9.0" }, { "2.0.0" })
    check("^2", { "2.0.0", "2.99.0" }, { "3.0.0", "1.9.9" })
    check("^1.2.3", { "1.2.3", "1.9.0" }, { "2.0.0", "1.2.2" })
    check("^0.2.3", { "0.2.3", "0.2.9" }, { "0.3.0", "0.2.2" })
    check("^0.0.3", { "0.0.3" }, { "0.0.4" })
    check("^0", { "0.0.1", "0.9.9" }, { "1.0.0" })
    check("1.x", { "1.0.0", "1.99.1" }, { "2.0.0", "0.9.0" })
    check("1.2.*", { "1.2.0", "1.2.9" }, { "1.3.0" })
    check("1.2.3 - 2.3", { "1.2.3", "2.3.9" }, { "1.2.2", "2.4.0" })
  end)

  it("leaves pre-releases out unless the range opts in", function()
    check(">=1.0.0", { "1.5.0" }, { "1.5.0-rc.1" })
    check(">=1.0.0", { "1.5.0-rc.1" }, {}, { include_prerelease = true })
    check(">=1.5.0-rc.1", { "1.5.0-rc.1", "1.5.0-rc.2", "1.5.0" }, { "1.6.0-rc.1", "1.5.0-beta" })
    check("^2", {}, { "3.0.0-rc.1" }, { include_prerelease = true })
  end)

  it("describes itself in desugared form", function()
    assert.equal(">=1.4.0 <1.5.0-0", tostring(semver.range("~1.4")))
    assert.equal(">=2.0.0 <3.0.0-0", tostring(semver.range("^2")))
    assert.equal(">=0.2.3 <0.3.0-0", tostring(semver.range("^0.2.3")))
    assert.equal("=1.2.3 || >=1.0.0 <2.0.0-0", tostring(semver.range("=1.2.3 || 1.x")))
  end)

  it("explains bad ranges", function()
    local cases = {
      { ">=1.2 <<2", "invalid semver range '>=1.2 <<2': unknown operator '<<'" },
      { "", "invalid semver range '': empty range (use '*' for any version)" },
      { "1.2 ||", "invalid semver range '1.2 ||': empty alternative around '||'" },
      { ">=", "invalid semver range '>=': '>=' needs a version after it" },
      { "1.x.3", "invalid semver range '1.x.3': '1.x.3': a number may not follow a wildcard" },
      { "banana", "invalid semver range 'banana': 'banana' is not a version (expected numbers like 1.2.3, or x)" },
      { "1.2-rc", "invalid semver range '1.2-rc': '1.2-rc': a pre-release needs MAJOR.MINOR.PATCH" },
      { "1.2.3.4", "invalid semver range '1.2.3.4': '1.2.3.4' has more than three parts" },
      { "1.0 -2.0", "invalid semver range '1.0 -2.0': '-2.0' is not a version (expected numbers like 1.2.3, or x)" },
    }
    for _, c in ipairs(cases) do
      local r, msg, code = semver.range(c[1])
      assert.is_nil(r, c[1])
      assert.equal("INVALID", code)
      assert.equal(c[2], msg)
    end
  end)

  it("satisfies and max_satisfying", function()
    assert.is_true(semver.satisfies("1.4.2", "~1.4"))
    assert.is_false(semver.satisfies("latest", "*"))
    assert.is_nil((semver.satisfies("1.0.0", ">>1")))
    assert.equal("v1.9.0", semver.max_satisfying({ "1.2.0", "v1.9.0", "2.0.0", "latest" }, "^1"))
    assert.is_nil(semver.max_satisfying({ "3.0.0" }, "^1"))
  end)
end)
