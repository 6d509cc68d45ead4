-- freightliner.canonical: deterministic JSON.
local canonical = require("freightliner.canonical")
local json = require("freightliner.json")

describe("freightliner.canonical", function()
  it("sorts keys and tells arrays from objects", function()
    assert.equal('{"a":1,"b":[1,2,{"c":true,"d":null}],"z":"x"}',
      canonical.encode({ z = "x", b = { 1, 2, { d = json.null, c = true } }, a = 1 }))
    assert.equal("{}", canonical.encode({}))
    assert.equal("[]", canonical.encode(canonical.array()))
    assert.equal('{"1":"a","2":"b"}', (canonical.encode({ ["1"] = "a", ["2"] = "b" })))
    assert.equal('"a\\/b\\n\\"q\\""', canonical.encode('a/b\n"q"'))
  end)

  it("prints numbers so that they read back the same", function()
    assert.equal("42", canonical.encode(42))
    assert.equal("2", canonical.encode(2.0))
    assert.equal("0.1", canonical.encode(0.1))
    assert.equal("1732800000.123", canonical.encode(1732800000.123))
    assert.equal("-1.5e-07", canonical.encode(-1.5e-7))
    for _, v in ipairs({ 0.1, 1 / 3, 1e300, 123456.789, 2 ^ 52 + 0.5 }) do
      assert.equal(v, tonumber(canonical.encode(v)))
    end
  end)

  it("re-encodes its own output to the same text", function()
    local doc = { plan = { ratio = 1 / 3, n = 7, list = { "a", "b" }, empty = {}, nested = { x = { y = 2.5 } } },
                  s = "üñí\1\127", t = true }
    local text = assert(canonical.encode(doc))
    assert.equal(text, canonical.encode(json.decode(text)))
  end)

  it("indents when asked", function()
    assert.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}', canonical.encode({ a = { 1, 2 }, b = {} },
      { indent = "  " }))
  end)

  it("refuses what it cannot encode exactly", function()
    local t = {}
    t.self = t
    local cases = {
      { 0 / 0, "NaN" }, { math.huge, "infinity" }, { math.tointeger(2 ^ 53) + 1, "beyond 2^53" },
      { function() end, "cannot encode a function" }, { { [true] = 1 }, "boolean key" },
      { t, "contains itself" }, { { 1, 2, [4] = 4 }, "number key" },
    }
    for _, c in ipairs(cases) do
      local s, err = canonical.encode(c[1])
      assert.is_nil(s)
      assert.matches(c[2], err, 1, true)
    end
    assert.is_nil((canonical.encode(math.tointeger(2 ^ 60))))
  end)
end)
