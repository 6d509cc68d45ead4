-- core.fs: atomic writes, existence, mkdir -p, and process facts.
local core = require("freightliner.core")
local fs = core.fs

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/fl-fs-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

local function ls(dir)
  local p = io.popen("ls -A " .. dir)
  local names = {}
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("core.fs", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("atomic_write writes, replaces and leaves no temp file", function()
    local path = dir .. "/state.json"
    assert.is_true(fs.atomic_write(path, "one"))
    assert.equal("one", read(path))
    assert.is_true(fs.atomic_write(path, string.rep("x", 1 << 20)))
    assert.equal(1 << 20, #read(path))
    assert.is_true(fs.atomic_write(path, ""))
    assert.equal("", read(path))
    assert.same({ "state.json" }, ls(dir))
  end)

  it("atomic_write keeps the mode of an existing file; new files are 0644", function()
    local path = dir .. "/f"
    assert.is_true(fs.atomic_write(path, "a"))
    local p = io.popen("stat -c %a " .. path)
    assert.equal("644", p:read("l"))
    p:close()
    os.execute("chmod 600 " .. path)
    assert.is_true(fs.atomic_write(path, "b"))
    p = io.popen("stat -c %a " .. path)
    assert.equal("600", p:read("l"))
    p:close()
  end)

  it("atomic_write fails with IO and leaves nothing behind", function()
    local ok, msg, code = fs.atomic_write(dir .. "/missing/x", "data")
    assert.is_nil(ok)
    assert.equal("IO", code)
    assert.matches("missing", msg)
    -- a directory in the way: the rename fails, the temp file is removed
    os.execute("mkdir " .. dir .. "/adir && touch " .. dir .. "/adir/x")
    ok, msg, code = fs.atomic_write(dir .. "/adir", "data")
    assert.is_nil(ok)
    assert.equal("IO", code)
    assert.matches("adir", msg)
    assert.same({ "adir" }, ls(dir))
  end)

  it("exists tells files from directories", function()
    assert.is_false(fs.exists(dir .. "/nope"))
    local ok, kind = fs.exists(dir)
    assert.is_true(ok)
    assert.equal("directory", kind)
    fs.atomic_write(dir .. "/f", "x")
    ok, kind = fs.exists(dir .. "/f")
    assert.is_true(ok)
    assert.equal("file", kind)
  end)

  it("mkdir_p makes parents, is idempotent, and fails on a file in the way", function()
    assert.is_true(fs.mkdir_p(dir .. "/a/b/c"))
    assert.is_true(fs.mkdir_p(dir .. "/a/b/c/"))
    assert.equal("directory", select(2, fs.exists(dir .. "/a/b/c")))
    fs.atomic_write(dir .. "/file", "x")
    local ok, msg, code = fs.mkdir_p(dir .. "/file/sub")
    assert.is_nil(ok)
    assert.equal("IO", code)
    assert.matches("file", msg)
  end)

  it("isatty, hostname, time and random_id", function()
    assert.is_boolean(fs.isatty(2))
    assert.is_false(fs.isatty(999))
    assert.is_string(fs.hostname())
    assert.is_true(#fs.hostname() > 0)
    local t = fs.time()
    assert.equal("float", math.type(t))
    assert.is_true(math.abs(t - os.time()) < 5)
    local seen = {}
    for _ = 1, 100 do
      local id = fs.random_id()
      assert.matches("^%x+$", id)
      assert.equal(16, #id)
      assert.equal(id:lower(), id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
  end)

  it("raises on misuse", function()
    assert.has_error(function() fs.atomic_write(nil, "x") end)
    assert.has_error(function() fs.atomic_write("/tmp/x", nil) end)
    assert.has_error(function() fs.isatty(-1) end)
    assert.has_error(function() fs.mkdir_p("") end)
  end)
end)
