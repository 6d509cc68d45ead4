-- core.readline: reading lines on a pipe (no terminal), history files, the
-- completer; the terminal path (completion) is covered by repl_spec.
local h = require("helpers")
local core = require("freightliner.core")

describe("core.readline", function()
  it("reads lines from a pipe and returns nil at the end", function()
    local status, out, err = h.run({ "-e", [[
      local rl = fl.core.readline
      local a, b, c = rl.readline("> "), rl.readline("> "), rl.readline("> ")
      io.stderr:write(string.format("[%s][%s][%s]\n", tostring(a), tostring(b), tostring(c)))
    ]] }, { stdin = "hello\nworld\n" })
    assert.equal(0, status)
    assert.equal("[hello][world][nil]\n", err)
    assert.matches("> hello", out, 1, true) -- readline echoes when not on a terminal
  end)

  it("writes and reads history files; a missing file is not an error", function()
    local rl = core.readline
    local path = os.tmpname()
    os.remove(path)
    assert.is_true(rl.read_history(path))
    rl.add_history("fl.versions()")
    rl.add_history("")
    assert.is_true(rl.write_history(path))
    assert.equal("fl.versions()\n", h.slurp(path))
    assert.is_true(rl.read_history(path))
    os.remove(path)
    local ok, msg, code = rl.write_history("/nonexistent/dir/history")
    assert.is_nil(ok)
    assert.equal("IO", code)
    assert.matches("/nonexistent/dir/history", msg, 1, true)
  end)

  it("takes a completer function or nil, and nothing else", function()
    local rl = core.readline
    rl.set_completer(function() return {} end)
    rl.set_completer(nil)
    assert.has_error(function() rl.set_completer("nope") end)
  end)
end)
