-- freightliner repl and its parts: evaluation through stdin (which stops
-- at the first error), errors that do not end an interactive one,
-- multi-line input, pretty-printing, tab completion (on a
-- real pseudo-terminal) and history.
local h = require("helpers")
local repl = require("freightliner.repl")
local pretty = require("freightliner.pretty")

describe("freightliner repl (stdin from a pipe)", function()
  it("evaluates expressions and statements, and stops at the first error (status 1)", function()
    local status, out, err = h.run({ "repl" }, { stdin = table.concat({
      "1 + 1",
      "x = 40",
      "x + 2",
      "fl.digest.sha256('abc')",
      "error('boom')",
      "'never printed'",
      "", }, "\n") })
    assert.equal(1, status)
    assert.equal('2\n42\n"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"\n', out)
    assert.matches("stdin:1: boom\nstack traceback:", err, 1, true)
    assert.not_matches("repl.lua", err) -- its own frames are cut from tracebacks
  end)

  it("stops at a syntax error too", function()
    local status, out, err = h.run({ "repl" }, { stdin = "1 + 1\nx = = 1\n'never printed'\n" })
    assert.equal(1, status)
    assert.equal("2\n", out)
    assert.matches("stdin:1: unexpected symbol near '='", err, 1, true)
  end)

  it("survives errors when interactive", function()
    local lines = { "error('boom')", "local t = nil; return t.field", "'still here'" }
    local i = 0
    local out, errs = io.tmpfile(), io.tmpfile()
    local status = repl.run({ interactive = true, history = false, output = out, errors = errs,
      env = setmetatable({}, { __index = _G }),
      input = function() i = i + 1 return lines[i] end })
    assert.equal(0, status)
    out:seek("set")
    errs:seek("set")
    local o, e = out:read("a"), errs:read("a")
    assert.matches('"still here"', o, 1, true)
    assert.matches("stdin:1: boom", e, 1, true)
    assert.matches("stdin:1: attempt to index a nil value (local 't')", e, 1, true)
  end)

  it("continues incomplete statements and reports syntax errors", function()
    local status, out, err = h.run({ "repl" }, { stdin = table.concat({
      "function sq(n)",
      "  return n * n",
      "end",
      "sq(7)",
      "for i = 1, 2 do",
      "print('i', i)",
      "end",
      "{ b = 2, a = { 1, 2 }, 'first' }",
      "1, nil, 'three'",
      ".exit",
      "'never printed'", }, "\n") })
    assert.equal(0, status)
    assert.equal('49\ni\t1\ni\t2\n{ "first", a = { 1, 2 }, b = 2 }\n1\tnil\t"three"\n', out)
    assert.equal("", err)
  end)

  it("says so when the input ends inside a statement", function()
    local status, _, err = h.run({ "repl" }, { stdin = "if true then\n" })
    assert.equal(1, status)
    assert.matches("incomplete statement at end of input", err, 1, true)
  end)

  it("takes no arguments", function()
    local status, _, err = h.run({ "repl", "x" })
    assert.equal(2, status)
    assert.matches("repl takes no arguments", err, 1, true)
  end)
end)

describe("freightliner repl on a terminal", function()
  it("completes fl. names with Tab, evaluates, keeps history, quits on Ctrl-D", function()
    local history = os.tmpname()
    os.remove(history)
    local p = io.popen(string.format("python3 tests/lua/repl_pty.py %s %s 2>&1; echo \"rc=$?\"",
      h.shell_quote(h.bin), h.shell_quote(history)))
    local out = p:read("a")
    p:close()
    assert.matches("rc=0", out, 1, true)
    assert.matches("Freightliner %d+%.%d+%.%d+", out)
    assert.matches('fl.digest.sha256("abc")', out, 1, true) -- completed from fl.dig<Tab>.sha2<Tab>
    assert.matches('"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"', out, 1, true)
    assert.equal('fl.digest.sha256("abc")\n', h.slurp(history))
    os.remove(history)
  end)
end)

describe("repl.complete", function()
  local env = {
    fl = require("freightliner"),
    obj = setmetatable({ field = 1 }, { __index = { method = function() end, other = function() end } }),
    value = 3,
  }
  it("completes globals, keywords and fields", function()
    assert.same({ "false", "fl", "for", "function" }, repl.complete("f", env))
    assert.same({ "value" }, repl.complete("va", env))
    assert.same({ "print(" }, repl.complete("pri", _G))
    assert.same({ "fl.digest", "fl.glob(" }, (function()
      local out = {}
      for _, c in ipairs(repl.complete("fl.", env)) do
        if c == "fl.digest" or c == "fl.glob(" then out[#out + 1] = c end
      end
      return out
    end)())
    assert.same({ "fl.digest.sha256(", "fl.digest.sha512(" }, repl.complete("fl.digest.sha", env))
  end)
  it("offers methods after ':' and fields through __index tables", function()
    assert.same({ "obj:method(", "obj:other(" }, repl.complete("obj:", env))
    assert.same({ "obj.field", "obj.method(", "obj.other(" }, repl.complete("obj.", env))
    assert.same({}, repl.complete("value.", env))
    assert.same({}, repl.complete("nothing.here.", env))
    assert.same({}, repl.complete("obj[1].", env))
  end)
end)

describe("pretty.format", function()
  it("prints scalars like Lua, strings quoted", function()
    assert.equal("42", pretty.format(42))
    assert.equal("0.5", pretty.format(0.5))
    assert.equal("true", pretty.format(true))
    assert.equal("nil", pretty.format(nil))
    assert.equal('"a\\nb\\t\\"c\\"\\\\"', pretty.format('a\nb\t"c"\\'))
    assert.equal("null", pretty.format(require("cjson").null))
  end)

  it("sorts keys, arrays first, and nests", function()
    assert.equal('{ 1, 2, [1.5] = "x", a = {}, b = { c = true }, ["end"] = 2, ["not-ident"] = 1 }',
      pretty.format({ 1, 2, b = { c = true }, a = {}, [1.5] = "x", ["not-ident"] = 1, ["end"] = 2 }))
  end)

  it("breaks long tables over lines with indentation", function()
    local t = { name = string.rep("n", 40), list = { "alpha", "beta" }, nested = { deep = string.rep("d", 60) } }
    assert.equal('{\n  list = { "alpha", "beta" },\n  name = "' .. string.rep("n", 40) .. '",\n'
      .. '  nested = { deep = "' .. string.rep("d", 60) .. '" }\n}', pretty.format(t))
  end)

  it("marks cycles, truncates long strings and big or deep tables", function()
    local t = { name = "loop" }
    t.self = t
    assert.equal('{ name = "loop", self = <cycle> }', pretty.format(t))
    local shared = { 1 }
    assert.equal("{ { 1 }, { 1 } }", pretty.format({ shared, shared })) -- repeated, not a cycle
    assert.equal('"xxxxx"... (300 bytes)', pretty.format(string.rep("x", 300), { max_string = 5 }))
    assert.equal("{ 1, 2, ... (3 more) }", pretty.format({ 1, 2, 3, 4, 5 }, { max_items = 2 }))
    assert.equal("{ a = { b = {...} } }", pretty.format({ a = { b = { c = {} } } }, { max_depth = 2 }))
  end)

  it("uses __tostring where a value has one", function()
    local v = setmetatable({}, { __tostring = function() return "<thing>" end })
    assert.equal("{ <thing> }", pretty.format({ v }))
    assert.equal("1.2.3", pretty.format(require("freightliner.semver").parse("1.2.3")))
  end)
end)
