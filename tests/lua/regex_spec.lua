-- core.regex: POSIX extended regular expressions.
local core = require("freightliner.core")

describe("core.regex", function()
  it("compiles and matches (a search; anchors are explicit)", function()
    local re = assert(core.regex.compile("^v[0-9]+\\.[0-9]+$"))
    assert.is_true(re:match("v1.2"))
    assert.is_false(re:match("v1.2.3"))
    assert.is_false(re:match("1.2"))
    local any = assert(core.regex.compile("rc|beta"))
    assert.is_true(any:match("1.0-rc1"))
    assert.is_true(any:match("beta"))
    assert.is_false(any:match("1.0"))
    assert.equal("rc|beta", any:pattern())
    assert.equal("regex /rc|beta/", tostring(any))
  end)

  it("supports ERE syntax: groups, alternation, intervals, classes", function()
    local re = assert(core.regex.compile("^(alpha|beta)-[[:digit:]]{2,3}$"))
    assert.is_true(re:match("alpha-12"))
    assert.is_true(re:match("beta-123"))
    assert.is_false(re:match("beta-1"))
    assert.is_false(re:match("gamma-12"))
  end)

  it("returns nil, message, INVALID for a bad pattern", function()
    for _, bad in ipairs({ "a(b", "[a", "a{1", "*" .. "(" }) do
      local re, msg, code = core.regex.compile(bad)
      assert.is_nil(re)
      assert.equal("INVALID", code)
      assert.matches("^invalid regular expression '" .. bad:gsub("%p", "%%%0") .. "': ", msg)
    end
  end)

  it("closes (idempotent) and refuses use after close", function()
    local re = assert(core.regex.compile("x"))
    re:close()
    re:close()
    assert.equal("regex /x/ (closed)", tostring(re))
    assert.has_error(function() re:match("x") end)
    do
      local scoped <close> = assert(core.regex.compile("y"))
      assert.is_true(scoped:match("y"))
    end
  end)

  it("raises on misuse", function()
    assert.has_error(function() core.regex.compile(nil) end)
    assert.has_error(function() core.regex.compile("a\0b") end)
    local re = assert(core.regex.compile("x"))
    assert.has_error(function() re:match(nil) end)
  end)
end)
