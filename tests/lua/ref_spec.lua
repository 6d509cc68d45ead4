-- core.ref's checks: the one grammar of repository names, tags and digests
-- (src/registry/reference.c), as Lua code such as the config loader calls it.
local core = require("freightliner.core")
local ref = core.ref

local D256 = "sha256:" .. string.rep("a", 64)

describe("core.ref.check_*", function()
  it("accepts what the grammar allows", function()
    assert.is_true(ref.check_repository("library/alpine"))
    assert.is_true(ref.check_repository("a/b__c/d---e.f"))
    assert.is_true(ref.check_tag("v1.2.3-rc_1"))
    assert.is_true(ref.check_tag(string.rep("T", 128)))
    assert.is_true(ref.check_digest(D256))
    assert.is_true(ref.check_digest("sha512:" .. string.rep("0", 128)))
  end)

  it("returns nil, a message naming what is wrong and where, and a code", function()
    local cases = {
      { ref.check_repository, "Team/App", "INVALID",
        'invalid repository name "Team/App": repository name must be lowercase (at offset 0)' },
      { ref.check_repository, "a//b", "INVALID", "empty path component in repository name (at offset 2)" },
      { ref.check_repository, "host:5000/x", "INVALID",
        "invalid character ':' in repository name (allowed: lower-case letters, digits, '/' between components" },
      { ref.check_repository, "", "INVALID", "must have at least one component" },
      { ref.check_tag, "-x", "INVALID", "invalid tag \"-x\": must start with a letter, digit or '_', not '-'" },
      { ref.check_tag, "a/b", "INVALID",
        "invalid tag \"a/b\": invalid character '/' (allowed: letters, digits, '_', '.' and '-') (at offset 1)" },
      { ref.check_tag, string.rep("T", 129), "INVALID", "longer than 128 characters" },
      { ref.check_tag, "", "INVALID", "a tag must not be empty" },
      { ref.check_digest, "sha256:../../etc", "INVALID", "invalid character '.' in hex (at offset 7)" },
      { ref.check_digest, "md5:" .. string.rep("a", 32), "UNSUPPORTED",
        'unsupported digest algorithm "md5" (supported: sha256, sha512)' },
      { ref.check_digest, "sha256", "INVALID", "missing ':' between algorithm and hex" },
    }
    for _, c in ipairs(cases) do
      local ok, msg, code = c[1](c[2])
      assert.is_nil(ok, c[2])
      assert.equal(c[3], code, c[2])
      assert.matches(c[4], msg, 1, true)
    end
  end)

  it("raises on a non-string (misuse)", function()
    assert.has_error(function() ref.check_tag({}) end)
  end)

  it("fl.digest.parse says the same as check_digest", function()
    local _, a = ref.check_digest("sha256:ABC")
    local _, b = core.digest.parse("sha256:ABC")
    assert.equal(a, b)
  end)
end)
