-- The digest module, loaded from a stock lua5.4 as freightliner.core.
local fl = require("freightliner")
local digest = fl.digest
local helpers = require("helpers")

describe("digest", function()
  it("computes published SHA-256 and SHA-512 vectors", function()
    assert.equal("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      digest.sha256(""))
    assert.equal("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      digest.sha256("abc"))
    assert.equal("sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
      digest.sha512("abc"))
  end)

  it("hashes binary data with embedded zeros", function()
    assert.are_not.equal(digest.sha256("a\0b"), digest.sha256("a"))
  end)

  it("streams with an incremental hasher", function()
    local h = digest.new("sha256")
    for _ = 1, 1000 do h:update(string.rep("a", 1000)) end
    assert.equal("sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      h:final())
    assert.has_error(function() h:final() end, "hasher:final() called twice")
    h:close()
    assert.has_error(function() h:update("x") end)
    assert.matches("closed", tostring(h))
  end)

  it("supports to-be-closed hashers", function()
    local result
    do
      local h <close> = digest.new("sha512")
      result = h:update("a"):update("bc"):final()
    end
    assert.equal(digest.sha512("abc"), result)
  end)

  it("digests a file and reports its size", function()
    local path = helpers.write_file(os.tmpname(), string.rep("xyz", 100000))
    local d, size = digest.file(path)
    assert.equal(digest.sha256(string.rep("xyz", 100000)), d)
    assert.equal(300000, size)
    local d512 = digest.file(path, "sha512")
    assert.equal(digest.sha512(string.rep("xyz", 100000)), d512)
    os.remove(path)
  end)

  it("returns nil, message, NOT_FOUND for a missing file", function()
    local ok, msg, code = digest.file("/nonexistent/file")
    assert.is_nil(ok)
    assert.matches("/nonexistent/file", msg, 1, true)
    assert.equal("NOT_FOUND", code)
  end)

  it("raises argument errors on misuse", function()
    assert.has_error(function() digest.sha256() end)
    assert.has_error(function() digest.new("md5") end)
    assert.has_error(function() digest.file("/tmp", "crc32") end)
  end)

  describe("parse", function()
    it("accepts well-formed digests", function()
      local d = digest.parse(digest.sha256("x"))
      assert.equal("sha256", d.algorithm)
      assert.equal(64, #d.hex)
    end)
    local bad = {
      { "", "INVALID" },
      { "sha256", "INVALID" },
      { "md5:d41d8cd98f00b204e9800998ecf8427e", "UNSUPPORTED" },
      { "sha256:" .. string.rep("A", 64), "INVALID" },
      { "sha256:" .. string.rep("a", 63), "INVALID" },
      { "sha512:" .. string.rep("a", 64), "INVALID" },
    }
    for _, case in ipairs(bad) do
      it("refuses " .. (case[1] == "" and "an empty string" or case[1]), function()
        local ok, msg, code = digest.parse(case[1])
        assert.is_nil(ok)
        assert.matches("invalid digest", msg, 1, true)
        assert.equal(case[2], code)
      end)
    end
  end)
end)
