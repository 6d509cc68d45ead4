-- core.yaml.load: typing, positions, anchors/aliases and the alias-bomb
-- guard, depth limit, syntax error positions.
local core = require("freightliner.core")
local yaml = core.yaml

describe("core.yaml.load", function()
  it("types plain scalars as the YAML 1.2 core schema does; quoted ones stay strings", function()
    local doc = assert(yaml.load([[
null1: ~
null2: null
null3:
t: true
f: False
i: 42
neg: -17
hex: 0x1F
oct: 0o17
f1: 3.5
f2: 1e3
f3: .5
inf: .inf
ninf: -.Inf
nan: .nan
s: hello world
q1: "42"
q2: 'true'
yes: yes
ver: 1.2.3
tagged: !!str 12
block: |
  line 1
  line 2
]]))
    assert.equal(yaml.null, doc.null1)
    assert.equal(yaml.null, doc.null2)
    assert.equal(yaml.null, doc.null3)
    assert.is_true(doc.t)
    assert.is_false(doc.f)
    assert.equal(42, doc.i)
    assert.equal("integer", math.type(doc.i))
    assert.equal(-17, doc.neg)
    assert.equal(31, doc.hex)
    assert.equal(15, doc.oct)
    assert.equal(3.5, doc.f1)
    assert.equal("float", math.type(doc.f2))
    assert.equal(1000.0, doc.f2)
    assert.equal(0.5, doc.f3)
    assert.equal(math.huge, doc.inf)
    assert.equal(-math.huge, doc.ninf)
    assert.is_true(doc.nan ~= doc.nan)
    assert.equal("hello world", doc.s)
    assert.equal("42", doc.q1)
    assert.equal("true", doc.q2)
    assert.equal("yes", doc.yes) -- YAML 1.1 booleans are strings in 1.2
    assert.equal("1.2.3", doc.ver)
    assert.equal("12", doc.tagged)
    assert.equal("line 1\nline 2\n", doc.block)
  end)

  it("null is the same value as cjson.null", function()
    assert.equal(require("cjson").null, yaml.null)
  end)

  it("gives the line and column of every key and value", function()
    local doc, pos = assert(yaml.load("a: 1\nb:\n  c: [x, y]\n  d:\n    - e: f\n"))
    assert.same({ line = 1, column = 1 }, pos[doc].keys.a)
    assert.same({ line = 1, column = 4 }, pos[doc].values.a)
    assert.same({ line = 2, column = 1 }, pos[doc].keys.b)
    assert.same({ line = 3, column = 3 }, pos[doc].values.b)
    assert.same({ line = 3, column = 3 }, pos[doc.b].keys.c)
    assert.same({ line = 3, column = 6 }, pos[doc.b].values.c)
    assert.same({ line = 3, column = 10 }, pos[doc.b.c].values[2])
    assert.same({ line = 5, column = 7 }, pos[doc.b.d[1]].keys.e)
    assert.same({ line = 5, column = 10 }, pos[doc.b.d[1]].values.e)
    assert.equal(1, pos[doc].line)
    assert.equal(1, pos[doc].column)
  end)

  it("copies anchored values for aliases, with positions", function()
    local doc, pos = assert(yaml.load("base: &b {x: 1, y: [1, 2]}\ncopy: *b\nscalar: &s hi\nagain: *s\n"))
    assert.same(doc.base, doc.copy)
    assert.are_not.equal(doc.base, doc.copy) -- a copy, not the same table
    doc.copy.y[1] = 99
    assert.equal(1, doc.base.y[1])
    assert.equal("hi", doc.again)
    assert.is_table(pos[doc.copy])
  end)

  it("refuses an alias bomb", function()
    local bomb = [[
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
]]
    local v, msg, code = yaml.load(bomb, "bomb.yaml")
    assert.is_nil(v)
    assert.equal("INVALID", code)
    assert.equal("bomb.yaml:5:8: aliases expand to more than 10000 nodes (refusing a possible alias bomb)", msg)
  end)

  it("reports syntax errors as FILE:LINE:COLUMN: message", function()
    local cases = {
      { "a: [1, 2\nb: 3\n", "f.yaml:2:2: did not find expected ',' or ']' "
        .. "(while parsing a flow sequence at line 1, column 4)" },
      { "a: 1\n b: 2\n", "f.yaml:2:3: mapping values are not allowed in this context" },
      { "a: 'x\n", "f.yaml:2:1: found unexpected end of stream "
        .. "(while scanning a quoted scalar at line 1, column 4)" },
      { "a: 1\na: 2\n", "f.yaml:2:1: duplicate key 'a'" },
      { "a: *nope\n", "f.yaml:1:4: alias '*nope' refers to no complete anchor" },
      { "--- 1\n--- 2\n", "f.yaml:2:1: expected a single YAML document, found another" },
      { "? [a]\n: b\n", "f.yaml:1:3: complex mapping keys are not supported" },
      { "~: 1\n", "f.yaml:1:1: a mapping key may not be null" },
    }
    for _, c in ipairs(cases) do
      local v, msg, code = yaml.load(c[1], "f.yaml")
      assert.is_nil(v)
      assert.equal("INVALID", code)
      assert.equal(c[2], msg)
    end
  end)

  it("limits nesting depth", function()
    local ok = assert(yaml.load(string.rep("[", 60) .. string.rep("]", 60)))
    assert.is_table(ok)
    local v, msg = yaml.load(string.rep("[", 100) .. string.rep("]", 100), "deep.yaml")
    assert.is_nil(v)
    assert.equal("deep.yaml:1:65: nesting deeper than 64 levels", msg)
  end)

  it("an empty document is null; the default file name is <string>", function()
    assert.equal(yaml.null, (yaml.load("")))
    assert.equal(yaml.null, (yaml.load("# only a comment\n")))
    local _, msg = yaml.load("a: [")
    assert.matches("^<string>:", msg)
  end)

  it("raises on misuse", function()
    assert.has_error(function() yaml.load(nil) end)
    assert.has_error(function() yaml.load({}) end)
  end)

  it("does not leak or crash on many failing loads (run under ASan)", function()
    for i = 1, 200 do
      assert.is_nil((yaml.load("a: [" .. string.rep("x, ", i))))
      assert.is_nil((yaml.load("a: &x [1]\nb: *y")))
    end
    collectgarbage()
  end)
end)
