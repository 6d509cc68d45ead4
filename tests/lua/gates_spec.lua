-- The hygiene gates of make check, run against a scratch git repository:
-- scripts/check-secrets.sh must find a planted credential and honour the
-- allow-list; scripts/check-deps.sh must pass the real binary.
local helpers = require("helpers")
local q = helpers.shell_quote
local root = helpers.root

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  return ok and 0 or status, out
end

describe("check-secrets", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. q(dir .. "/scripts") .. " && cp " .. q(root .. "/scripts/check-secrets.sh")
      .. " " .. q(dir .. "/scripts/") .. " && git -C " .. q(dir) .. " init -q"))
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  local function run() return sh(q(dir .. "/scripts/check-secrets.sh")) end

  it("passes a clean tree", function()
    helpers.write_file(dir .. "/README", "nothing to see\npassword_env: HUB_TOKEN\n")
    local status, out = run()
    assert.are.equal(0, status, out)
  end)

  for name, text in pairs({
    aws = 'key = "AKIAIOSFODNN7EXAMPLE"\n',
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n",
    docker_auth = '{"auths": {"r.example": {"auth": "dXNlcjpwYXNzd29yZA=="}}}\n',
    literal_password = 'password: "hunter2hunter2"\n',
    github = "token ghp_" .. string.rep("a", 36) .. "\n",
  }) do
    it("finds a planted " .. name .. " and names file and line", function()
      helpers.write_file(dir .. "/config.txt", "line one\n" .. text)
      local status, out = run()
      assert.are.equal(1, status, out)
      assert.matches("config%.txt:2: looks like a credential", out)
    end)
  end

  it("exempts exactly the paths in .secrets-allow", function()
    assert(os.execute("mkdir -p " .. q(dir .. "/fixtures")))
    helpers.write_file(dir .. "/fixtures/config.json", '{"auth": "dXNlcjpwYXNzd29yZA=="}\n')
    helpers.write_file(dir .. "/other.json", '{"auth": "dXNlcjpwYXNzd29yZA=="}\n')
    helpers.write_file(dir .. "/.secrets-allow", "fixtures/*   # made-up test user\n")
    local status, out = run()
    assert.are.equal(1, status, out)
    assert.matches("other%.json:1", out)
    assert.not_matches("fixtures/config%.json", out)
  end)
end)

describe("check-deps", function()
  it("accepts the binary: every linked library is a pinned Debian package", function()
    local status, out = sh(q(root .. "/scripts/check-deps.sh") .. " " .. q(helpers.bin))
    assert.are.equal(0, status, out)
    assert.matches("ok%s+libcurl%.so%.4: libcurl4", out)
  end)

  it("refuses a binary linking a library that no Debian package ships", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. q(dir)))
    -- a shared library of our own, outside any package, and a program using it
    helpers.write_file(dir .. "/l.c", "int fl_dep_probe(void) { return 1; }\n")
    helpers.write_file(dir .. "/m.c", "int fl_dep_probe(void);\nint main(void) { return fl_dep_probe() - 1; }\n")
    local ok = os.execute(string.format("cd %s && cc -shared -fPIC -o libfldepprobe.so l.c && "
      .. "cc -o prog m.c -L. -lfldepprobe -Wl,-rpath,%s", q(dir), q(dir)))
    assert.truthy(ok)
    local status, out = sh(q(root .. "/scripts/check-deps.sh") .. " " .. q(dir .. "/prog"))
    os.execute("rm -rf " .. q(dir))
    assert.are.equal(1, status, out)
    assert.matches("libfldepprobe%.so .*not shipped by any Debian package", out)
  end)
end)
