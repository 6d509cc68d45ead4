-- freightliner.checkpoint: round trips, rate-limited writes, and refusing
-- (without touching) truncated, corrupted, foreign and other-version files.
local checkpoint = require("freightliner.checkpoint")
local core = require("freightliner.core")
local cjson = require("cjson")
local h = require("helpers")

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/fl-cp-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

local PLAN = { source = "src:5000", destination = "dst:5000", parallel = 8, dry_run = false,
               entries = { { pattern = "team/*", tags = { include = { "v*" } }, platforms = { "linux/amd64" } } },
               ratio = 0.1 }

-- Expect load to refuse the file with a message matching `pattern`, and the
-- file to be byte-for-byte what it was.
local function refuses(path, pattern, want_code)
  local before = h.slurp(path)
  local cp, msg, code = checkpoint.load(path)
  assert.is_nil(cp)
  assert.equal(want_code or "INVALID", code)
  assert.matches(pattern, msg, 1, true)
  assert.equal(before, h.slurp(path))
  -- and create() will not overwrite it either
  local again, msg2 = checkpoint.create(path, PLAN)
  assert.is_nil(again)
  assert.matches("will not overwrite", msg2, 1, true)
  assert.equal(before, h.slurp(path))
end

describe("freightliner.checkpoint", function()
  local dir, path
  before_each(function()
    dir = tmpdir()
    path = dir .. "/run.checkpoint"
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("creates a sealed file and loads it back", function()
    local cp = assert(checkpoint.create(path, PLAN))
    assert.matches("^%x+$", cp.run_id)
    assert.equal(16, #cp.run_id)
    local doc = cjson.decode(h.slurp(path))
    assert.equal("freightliner-checkpoint", doc.format)
    assert.equal(1, doc.version)
    assert.equal(cp.run_id, doc.run_id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", doc.created)
    -- the seal, checked by an independent implementation (Python's json and
    -- hashlib over the canonical form: sorted keys, no spaces, "/" escaped)
    local ok = os.execute(string.format([[python3 -c '
import hashlib, json, sys
d = json.loads(open(sys.argv[1]).readline())
c = d.pop("checksum")
body = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")
want = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
sys.exit(0 if c in (want, want[7:]) else 1)' %s]], h.shell_quote(path)))
    assert.is_true(ok == true or ok == 0, "the checksum does not match an independent recomputation")

    local loaded = assert(checkpoint.load(path))
    assert.equal(cp.run_id, loaded.run_id)
    assert.same(PLAN, loaded.plan)
    assert.same({}, loaded:pending())
  end)

  it("records states and fields; resume sees what is left", function()
    local cp = assert(checkpoint.create(path, PLAN))
    local a = checkpoint.key("src:5000/team/a:v1", "dst:5000/team/a:v1")
    assert.equal("src:5000/team/a:v1 -> dst:5000/team/a:v1", a)
    assert.same({ "src:5000/team/a:v1", "dst:5000/team/a:v1" }, { checkpoint.split(a) })
    assert.is_true(cp:mark(a, "done", { digest = "sha256:" .. string.rep("1", 64) }))
    assert.is_true(cp:mark("k2", "failed", { error = "boom", code = "SERVER" }))
    assert.is_true(cp:mark("k3", "in_progress"))
    assert.is_true(cp:mark("k4", "pending"))
    assert.is_true(cp:mark("k5", "skipped"))
    assert.is_true(cp:flush())
    local loaded = assert(checkpoint.load(path))
    assert.equal("done", loaded:state(a))
    assert.equal("sha256:" .. string.rep("1", 64), loaded:entry(a).digest)
    assert.equal("boom", loaded:entry("k2").error)
    assert.equal("SERVER", loaded:entry("k2").code)
    assert.is_nil(loaded:state("nope"))
    local left = loaded:pending()
    assert.same({ "k2", "k3", "k4" }, { left[1].key, left[2].key, left[3].key })
    assert.equal("failed", left[1].state)
    assert.equal("boom", left[1].error)
    assert.same({ pending = 1, in_progress = 1, done = 1, failed = 1, skipped = 1 }, loaded:counts())
    -- marking on a loaded checkpoint keeps it valid
    assert.is_true(loaded:mark("k2", "done", { flush = true }))
    assert.equal("done", assert(checkpoint.load(path)):state("k2"))
  end)

  it("writes at most every 0.5 s, but done, failed and flush at once", function()
    local t0 = core.now()
    local cp = assert(checkpoint.create(path, PLAN))
    local first = h.slurp(path)
    assert.is_true(cp:mark("k1", "pending"))
    assert.is_true(cp:mark("k2", "in_progress"))
    -- held back, unless this (loaded, sanitized) machine took longer than
    -- the window itself to get here
    if core.now() - t0 < 0.4 then assert.equal(first, h.slurp(path)) end
    assert.is_true(cp:flush())
    local second = h.slurp(path)
    assert.are_not.equal(first, second)
    assert.is_true(cp:flush()) -- nothing changed: no write
    assert.equal(second, h.slurp(path))
    assert.is_true(cp:mark("k1", "done"))
    assert.equal("done", assert(checkpoint.load(path)):state("k1"))
    assert.is_true(cp:mark("k3", "pending", { flush = true }))
    assert.equal("pending", assert(checkpoint.load(path)):state("k3"))
    core.sleep(0.55)
    assert.is_true(cp:mark("k4", "pending"))
    assert.equal("pending", assert(checkpoint.load(path)):state("k4"))
    local p = io.popen("ls -A " .. dir)
    assert.equal("run.checkpoint", p:read("a"):gsub("%s+$", ""))
    p:close()
  end)

  it("refuses a corrupted file (a flipped byte) and leaves it alone", function()
    local cp = assert(checkpoint.create(path, PLAN))
    cp:mark("src/a:v1 -> dst/a:v1", "done", { digest = "sha256:" .. string.rep("a", 64) })
    local text = h.slurp(path)
    local at = text:find("aaaa", 1, true)
    h.write_file(path, text:sub(1, at - 1) .. "b" .. text:sub(at + 1))
    refuses(path, "is corrupted (its checksum does not match its content)")
    -- a flip that breaks the JSON
    at = text:find('"images"', 1, true)
    h.write_file(path, text:sub(1, at - 1) .. "#" .. text:sub(at + 1))
    refuses(path, "is corrupted (invalid JSON")
  end)

  it("refuses a truncated file", function()
    local cp = assert(checkpoint.create(path, PLAN))
    cp:mark("k", "done")
    local text = h.slurp(path)
    h.write_file(path, text:sub(1, #text // 2))
    refuses(path, "is truncated (it ends before its JSON does)")
    h.write_file(path, "")
    refuses(path, "is empty (truncated?)")
  end)

  it("refuses foreign files", function()
    h.write_file(path, '{"hello": "world"}\n')
    refuses(path, 'is not a Freightliner checkpoint (no "format": "freightliner-checkpoint")')
    h.write_file(path, "hello world\n")
    refuses(path, "is not a Freightliner checkpoint (it is not a JSON object)")
    h.write_file(path, "{not json at all")
    refuses(path, "is not a Freightliner checkpoint (not valid JSON)")
    h.write_file(path, "\0\1\2binary")
    refuses(path, "is not a Freightliner checkpoint")
  end)

  it("refuses another version, and a missing checksum", function()
    local doc = { format = "freightliner-checkpoint", version = 2, run_id = "x", images = {} }
    h.write_file(path, cjson.encode(doc))
    refuses(path, "has version 2; this freightliner reads version 1", "UNSUPPORTED")
    doc.version = 1
    h.write_file(path, cjson.encode(doc))
    refuses(path, "is corrupted (it has no checksum)")
  end)

  it("reports a missing file as NOT_FOUND", function()
    local cp, msg, code = checkpoint.load(dir .. "/none")
    assert.is_nil(cp)
    assert.equal("NOT_FOUND", code)
    assert.matches("cannot open checkpoint", msg, 1, true)
  end)

  it("replaces a finished checkpoint, but not one with work left unless forced", function()
    local cp = assert(checkpoint.create(path, PLAN))
    cp:mark("k", "failed", { error = "x" })
    local before = h.slurp(path)
    local again, msg, code = checkpoint.create(path, PLAN)
    assert.is_nil(again)
    assert.equal("EXISTS", code)
    assert.matches("has unfinished work (k is failed)", msg, 1, true)
    assert.matches("freightliner resume", msg, 1, true)
    assert.equal(before, h.slurp(path))
    local forced = assert(checkpoint.create(path, PLAN, { force = true }))
    assert.are_not.equal(cp.run_id, forced.run_id)
    forced:mark("k", "done")
    assert.is_table(checkpoint.create(path, PLAN))
  end)

  it("refuses plans it cannot record, and bad states", function()
    local cp, msg, code = checkpoint.create(path, { hook = function() end })
    assert.is_nil(cp)
    assert.equal("INVALID", code)
    assert.matches("cannot encode a function", msg, 1, true)
    assert.is_false(core.fs.exists(path))
    cp = assert(checkpoint.create(path, PLAN))
    assert.has_error(function() cp:mark("k", "finished") end)
    assert.has_error(function() cp:mark(nil, "done") end)
  end)

  it("returns IO when it cannot write", function()
    local cp = assert(checkpoint.create(path, PLAN))
    os.execute("rm -rf " .. dir)
    local level = core.log.get_level()
    core.log.set_level("off")
    local ok, msg, code = cp:mark("k", "done")
    core.log.set_level(level)
    assert.is_nil(ok)
    assert.equal("IO", code)
    assert.matches(dir, msg, 1, true)
  end)
  describe("as a journal", function()
    local D = "sha256:" .. string.rep("c", 64)

    local function lines(text)
      local out = {}
      for l in text:gmatch("[^\n]*\n") do out[#out + 1] = l end
      return out
    end

    it("appends one checksummed line per change and compacts to one document", function()
      local cp = assert(checkpoint.create(path, PLAN))
      local size0 = #h.slurp(path)
      assert.is_true(cp:mark("a", "done", { digest = D }))
      assert.is_true(cp:mark("b", "failed", { error = "boom", code = "SERVER" }))
      local text = h.slurp(path)
      local ls = lines(text)
      assert.equal(3, #ls)
      assert.equal(size0, #ls[1]) -- the snapshot is not rewritten
      local sum, body = ls[2]:match("^(%x+) ({.*})\n$")
      assert.equal(core.digest.sha256(body):sub(8, 23), sum)
      assert.same({ k = "a", s = "done", d = D }, (function()
        local r = cjson.decode(body)
        r.t = nil
        return r
      end)())
      assert.is_true(cp:compact())
      local doc = cjson.decode(h.slurp(path)) -- one JSON document again
      assert.equal("done", doc.images.a.state)
      assert.equal(D, doc.images.a.digest)
      assert.equal("boom", doc.images.b.error)
      assert.equal(1, #lines(h.slurp(path)))
    end)

    it("costs the same per image at 1 and at 5,000 images (no rewrite)", function()
      local cp = assert(checkpoint.create(path, PLAN))
      for i = 1, 5000 do cp:mark("img" .. i, "pending") end
      assert.is_true(cp:flush())
      local before = #h.slurp(path)
      local t0 = core.now()
      for i = 1, 200 do assert.is_true(cp:mark("img" .. i, "done", { digest = D })) end
      local per = (core.now() - t0) / 200
      local grew = #h.slurp(path) - before
      -- 200 appended records, each well under 300 bytes, and no snapshot
      assert.is_true(grew < 200 * 300, "grew by " .. grew)
      assert.is_true(per < 0.005, "per mark: " .. per)
      local loaded = assert(checkpoint.load(path))
      assert.equal(200, loaded:counts().done)
      assert.equal(4800, loaded:counts().pending)
    end)

    it("drops a torn last record, keeps the rest, and compacts on the first write", function()
      local cp = assert(checkpoint.create(path, PLAN))
      cp:mark("a", "done", { digest = D })
      cp:mark("b", "done", { digest = D })
      local text = h.slurp(path)
      -- the machine crashed while "b" was being written: half a line
      h.write_file(path, text:sub(1, #text - 40))
      local level = core.log.get_level()
      core.log.set_level("off")
      local loaded = assert(checkpoint.load(path))
      core.log.set_level(level)
      assert.equal("done", loaded:state("a"))
      assert.is_nil(loaded:state("b"))
      -- load itself did not write
      assert.equal(text:sub(1, #text - 40), h.slurp(path))
      -- and a tail of NUL bytes (blocks allocated, never written) is torn too
      h.write_file(path, text .. string.rep("\0", 100) .. "\n")
      core.log.set_level("off")
      loaded = assert(checkpoint.load(path))
      core.log.set_level(level)
      assert.equal("done", loaded:state("b"))
      assert.is_true(loaded:mark("c", "done", { digest = D }))
      local after = h.slurp(path)
      assert.is_nil(after:find("\0", 1, true))
      local ls = lines(after)
      assert.equal(1, #ls) -- compacted: one snapshot, "c" in it
      local again = assert(checkpoint.load(path))
      assert.same({ "done", "done", "done" }, { again:state("a"), again:state("b"), again:state("c") })
    end)

    it("refuses a damaged record before the last one, and leaves the file alone", function()
      local cp = assert(checkpoint.create(path, PLAN))
      cp:mark("a", "done", { digest = D })
      cp:mark("b", "done", { digest = D })
      local text = h.slurp(path)
      local at = text:find("cccc", 1, true) -- in record 1
      h.write_file(path, text:sub(1, at - 1) .. "d" .. text:sub(at + 1))
      refuses(path, "is corrupted (its checksum does not match its content) at journal record 1")
      -- a line cut short in the middle of the journal is damage, not a tear
      local ls = lines(text)
      h.write_file(path, ls[1] .. ls[2]:sub(1, 30) .. "\n" .. ls[3])
      refuses(path, "at journal record 1")
    end)

    it("leaves the file usable after a failed append", function()
      local cp = assert(checkpoint.create(path, PLAN))
      cp:mark("a", "done", { digest = D })
      -- someone else compacts the file under us: our appends must not go
      -- to the old inode; the error is reported and the next write compacts
      local other = assert(checkpoint.load(path))
      assert.is_true(other:compact())
      local level = core.log.get_level()
      core.log.set_level("off")
      local ok, _, code = cp:mark("b", "done", { digest = D })
      core.log.set_level(level)
      assert.is_nil(ok)
      assert.equal("IO", code)
      assert.is_true(cp:mark("c", "done", { digest = D }))
      local loaded = assert(checkpoint.load(path))
      assert.same({ "done", "done", "done" }, { loaded:state("a"), loaded:state("b"), loaded:state("c") })
    end)
  end)
end)
