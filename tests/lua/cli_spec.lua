-- The real binary: version, help, run, -e, errors and exit codes.
local h = require("helpers")

describe("freightliner binary", function()
  it("prints its version and those of its libraries", function()
    for _, flag in ipairs({ "--version", "version" }) do
      local status, out = h.run({ flag })
      assert.equal(0, status)
      assert.matches("^freightliner %d+%.%d+%.%d+\n", out)
      assert.matches("Lua 5%.4", out)
      assert.matches("libcurl %d", out)
      assert.matches("OpenSSL", out)
    end
  end)

  it("prints help for the program and for one command", function()
    local status, out = h.run({ "--help" })
    assert.equal(0, status)
    assert.matches("usage: freightliner", out, 1, true)
    assert.matches("run", out)
    status, out = h.run({ "help", "run" })
    assert.equal(0, status)
    assert.matches("freightliner run SCRIPT.lua", out, 1, true)
    status, out = h.run({ "run", "--help" })
    assert.equal(0, status)
    assert.matches("freightliner run SCRIPT.lua", out, 1, true)
  end)

  it("exits 2 on an unknown command or no command", function()
    local status, _, err = h.run({ "frobnicate" })
    assert.equal(2, status)
    assert.matches("unknown command 'frobnicate'", err, 1, true)
    status = h.run({})
    assert.equal(2, status)
    status, _, err = h.run({ "help", "nope" })
    assert.equal(2, status)
    assert.matches("unknown command 'nope'", err, 1, true)
  end)

  it("runs -e code with fl loaded", function()
    local status, out = h.run({ "-e", "print(fl.digest.sha256('abc'))" })
    assert.equal(0, status)
    assert.equal("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n", out)
  end)

  it("runs a script with arg set as lua5.4 does", function()
    local path = h.write_file(os.tmpname() .. ".lua", [[
      print(arg[0] ~= nil, #arg, arg[1], arg[2], select('#', ...), ...)
      return 7
    ]])
    local status, out = h.run({ "run", path, "one", "two" })
    assert.equal(7, status)
    assert.equal("true\t2\tone\ttwo\t2\tone\ttwo\n", out)
    os.remove(path)
  end)

  it("reports a script error as file:line: message with a traceback, exit 1", function()
    local path = h.write_file(os.tmpname() .. ".lua", "local x = 1\nerror('boom')\n")
    local status, out, err = h.run({ "run", path })
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches(path .. ":2: boom", err, 1, true)
    assert.matches("stack traceback:", err, 1, true)
    os.remove(path)
  end)

  it("reports error objects that are not strings", function()
    local status, _, err = h.run({ "-e", "error({})" })
    assert.equal(1, status)
    assert.matches("error object is a table value", err, 1, true)
  end)

  it("reports a syntax error, and a missing script as a usage error", function()
    local path = h.write_file(os.tmpname() .. ".lua", "local = 1\n")
    local status, _, err = h.run({ "run", path })
    assert.equal(1, status)
    assert.matches(path .. ":1:", err, 1, true)
    os.remove(path)
    status, _, err = h.run({ "run", "/nonexistent/script.lua" })
    assert.equal(2, status)
    assert.matches("cannot open /nonexistent/script.lua", err, 1, true)
  end)

  it("reads a script from stdin with '-'", function()
    local status, out = h.run({ "run", "-" }, { stdin = "print(arg[0], 1 + 1)" })
    assert.equal(0, status)
    assert.equal("-\t2\n", out)
  end)

  it("runs from any directory with no files beside it (embedded stdlib)", function()
    local status, out = h.run({ "-e", "print(package.searchers ~= nil, require('freightliner').VERSION)" },
      { env = "cd / && env -u FREIGHTLINER_LUA_PATH" })
    assert.equal(0, status)
    assert.matches("true\t%d+%.%d+", out)
  end)

  it("loads the stdlib from disk with --lua-dir and FREIGHTLINER_LUA_PATH", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/freightliner/cmd && cp -r lua/stdlib/freightliner/. "
      .. dir .. "/freightliner/"))
    h.write_file(dir .. "/freightliner/cmd/hello.lua",
      "return { summary = 'hi', run = function() print('hello from disk') return 0 end }")
    local status, out = h.run({ "--lua-dir", dir, "hello" })
    assert.equal(0, status)
    assert.equal("hello from disk\n", out)
    status, out = h.run({ "hello" }, { env = "FREIGHTLINER_LUA_PATH=" .. dir })
    assert.equal(0, status)
    assert.equal("hello from disk\n", out)
    -- a stdlib of another version is refused at start-up
    local init = dir .. "/freightliner/init.lua"
    h.write_file(init, (h.slurp(init):gsub('VERSION = "[^"]*"', 'VERSION = "9.9.9"')))
    local _, err
    status, _, err = h.run({ "--lua-dir", dir, "version" })
    assert.equal(1, status)
    assert.matches("stdlib is version 9.9.9 but the C core is", err, 1, true)
    os.execute("rm -rf " .. dir)
  end)

  it("prints a bug with its traceback and a request to report it; a user error without one", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/freightliner/cmd && cp -r lua/stdlib/freightliner/. "
      .. dir .. "/freightliner/"))
    h.write_file(dir .. "/freightliner/cmd/bug.lua",
      "return { summary = 'x', run = function() local t = nil; return t.field end }")
    h.write_file(dir .. "/freightliner/cmd/usererr.lua", "return { summary = 'x', run = function() "
      .. "require('freightliner.exitcode').usage('that will not do', 'usererr') end }")
    local status, out, err = h.run({ "--lua-dir", dir, "bug" })
    local _
    assert.equal(1, status)
    assert.equal("", out)
    assert.matches("internal error: .*bug%.lua:1: attempt to index a nil value", err)
    assert.matches("stack traceback:", err, 1, true)
    assert.matches("this is a bug in Freightliner", err, 1, true)
    status, _, err = h.run({ "--lua-dir", dir, "usererr" })
    assert.equal(2, status)
    assert.equal("freightliner: that will not do; see 'freightliner help usererr'\n", err)
    os.execute("rm -rf " .. dir)
  end)

  it("takes global options before or after the command, and names the closest flag", function()
    local status, out, err = h.run({ "version", "--log-level", "warn" })
    local _
    assert.equal(0, status, err)
    assert.matches("^freightliner ", out)
    status, _, err = h.run({ "--log-level", "loud", "version" })
    assert.equal(2, status)
    assert.matches("unknown log level 'loud'", err, 1, true)
    status, _, err = h.run({ "--log-levle", "warn", "version" })
    assert.equal(2, status)
    assert.matches("did you mean '--log-level'?", err, 1, true)
    status, _, err = h.run({ "replicate", "--dry-rn" })
    assert.equal(2, status)
    assert.matches("unknown option '--dry-rn' (did you mean '--dry-run'?)", err, 1, true)
    -- a script's own arguments are left alone
    status, out = h.run({ "-e", "print(...)", "--log-level", "x" })
    assert.equal(0, status)
    assert.equal("--log-level\tx\n", out)
  end)

  it("lists the exit statuses in --help and in each replication command's help", function()
    for _, argv in ipairs({ { "--help" }, { "help", "replicate" }, { "help", "sync" }, { "help", "resume" },
                            { "help", "replicate-tree" } }) do
      local status, out = h.run(argv)
      assert.equal(0, status)
      for _, code in ipairs({ "0", "1", "2", "130", "143" }) do
        assert.matches("\n  " .. code .. " +%a", out)
      end
    end
  end)

  it("escapes control characters in text log lines and keeps them as JSON escapes in JSON lines", function()
    local code = "require('freightliner.log').log('warn', 'tag \\27]0;x\\7 and\\nline', 'img\\27[2J', "
      .. "{ n = 1, code = 'X' })"
    local status, _, err = h.run({ "-e", code })
    assert.equal(0, status)
    assert.matches(" warn  img\\e[2J: tag \\e]0;x\\x07 and\\nline\n", err, 1, true)
    assert.not_matches("\27", err, 1, true)
    status, _, err = h.run({ "--log-format", "json", "-e", code })
    assert.equal(0, status)
    local doc = require("cjson").decode(err)
    assert.equal("tag \27]0;x\7 and\nline", doc.message)
    assert.equal("img\27[2J", doc.image)
    assert.equal(1, doc.n)
    assert.equal("X", doc.code)
    assert.matches("^%d+T%d+Z%-%x+$", doc.run_id)
  end)
end)

describe("freightliner.printable", function()
  local printable = require("freightliner.printable")
  it("escapes C0, DEL, C1, backslashes and bytes that are not UTF-8, and nothing else", function()
    assert.equal("plain v1.0-rc_1", printable.escape("plain v1.0-rc_1"))
    assert.equal("\\e]0;t\\x07", printable.escape("\27]0;t\7"))
    assert.equal("a\\nb\\rc\\td", printable.escape("a\nb\rc\td"))
    assert.equal("\\x7f\\\\", printable.escape("\127\\"))
    assert.equal("\\xc2\\x9b2J", printable.escape("\194\155" .. "2J"))
    assert.equal("\\xff\\xfe", printable.escape("\255\254"))
    assert.equal("日本 é", printable.escape("日本 é"))
  end)
end)
