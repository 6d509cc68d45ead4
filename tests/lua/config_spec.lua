-- freightliner.config (with interpolate and schema): the YAML sync file.
-- Each tests/lua/data/config/bad-*.yaml lists the exact problems it must
-- produce in "# expect: LINE:COLUMN: message" lines at its top (DIR stands
-- for the file's directory).
local config = require("freightliner.config")
local interpolate = require("freightliner.interpolate")
local schema = require("freightliner.schema")
local h = require("helpers")

local DATA = "tests/lua/data/config"

local function fixtures()
  local p = io.popen("ls " .. DATA .. "/bad-*.yaml")
  local files = {}
  for f in p:lines() do files[#files + 1] = f end
  p:close()
  return files
end

local function expected(path)
  local out = {}
  for line in io.lines(path) do
    local e = line:match("^# expect: (.*)$")
    if e then out[#out + 1] = (e:gsub("DIR/", DATA .. "/")) end
  end
  return out
end

describe("config.load", function()
  it("normalises a valid file into a plan", function()
    local plan = assert(config.load(DATA .. "/good.yaml", { env = { HUB_PASSWORD = "unused" } }))
    assert.equal(1, plan.version)
    assert.equal(6, plan.parallel) -- ${FL_TEST_PARALLEL:-6}, coerced to a number
    assert.same({ "linux/amd64", "linux/arm64/v8" }, plan.defaults.platforms)
    assert.same({ "hub", "mirror" }, (function()
      local n = {}
      for k in pairs(plan.registries) do n[#n + 1] = k end
      table.sort(n)
      return n
    end)())
    local hub = plan.registry_options["registry.example.com"]
    assert.equal(DATA .. "/certs/ca.pem", hub.ca_file)
    assert.is_true(hub.tls_verify)
    assert.equal("robot", hub.username)
    assert.equal("HUB_PASSWORD", hub.password_env)
    assert.equal(4, hub.max_attempts)
    assert.equal(200, hub.retry_base_ms)
    assert.equal(5000, hub.retry_max_ms)
    assert.equal(20, hub.requests_per_second)
    assert.equal(4, hub.max_concurrency)
    local mirror = plan.registry_options["127.0.0.1:5001"]
    assert.is_true(mirror.insecure)
    assert.equal(8 * 1024 * 1024, mirror.chunk_size)
    assert.equal(16 * 1024 * 1024, mirror.resume_chunk_size)
    assert.equal(2, mirror.max_concurrency) -- the registry's own limit wins
    assert.is_table(plan.registry_options["quay.example.org:8443"]) -- a host used directly gets defaults
    assert.equal(3, #plan.entries)
    local e1, e2, e3 = plan.entries[1], plan.entries[2], plan.entries[3]
    assert.equal("registry.example.com", e1.source)
    assert.equal("hub", e1.source_name)
    assert.equal("127.0.0.1:5001", e1.destination)
    assert.same({ "team/app", "team/web" }, e1.repositories)
    assert.equal("backup", e1.dest_prefix)
    assert.same({ include = { "v*" }, exclude = { "*-debug" }, semver = ">=1.2 <2", latest = 3 }, e1.tags)
    assert.same({ "linux/amd64", "linux/arm64/v8" }, e1.platforms) -- from defaults
    assert.is_true(e1.referrers)
    assert.equal("^ops/[a-z]+$", e2.regex)
    assert.equal("ops-mirror/{name}", e2.dest_template)
    assert.same({ "linux/amd64" }, e2.platforms) -- a single platform is a list of one
    assert.is_false(e2.referrers)
    assert.equal(DATA .. "/policy.lua", e2.policy)
    assert.equal("quay.example.org:8443", e3.source)
    assert.equal("tools/*", e3.pattern)
    local job = config.job(plan, { dry_run = true })
    assert.equal(plan.entries, job.entries)
    assert.equal(plan.registry_options, job.registries)
    assert.is_true(job.dry_run)
  end)

  it("interpolates from the given environment, coercing numbers", function()
    local plan = assert(config.load(DATA .. "/good.yaml", { env = { FL_TEST_PARALLEL = "3" } }))
    assert.equal(3, plan.parallel)
    local _, problems = config.load(DATA .. "/good.yaml", { env = { FL_TEST_PARALLEL = "lots" } })
    assert.equal("defaults.parallel: expected a whole number >= 1, got a string ('lots')", problems[1].message)
  end)

  for _, path in ipairs(fixtures()) do
    it("reports exactly the problems of " .. path:match("[^/]+$"), function()
      local want = expected(path)
      assert.is_true(#want > 0, "the fixture lists no expected problem")
      local plan, problems = config.load(path, { env = {} })
      assert.is_nil(plan)
      local got = {}
      for i, p in ipairs(problems) do got[i] = string.format("%d:%d: %s", p.line, p.column, p.message) end
      assert.same(want, got)
    end)
  end

  it("finds a password key anywhere, even where keys are unknown", function()
    local _, problems = config.parse("sync:\n  - extra:\n      deep: {password: x}\n", "p.yaml", { env = {} })
    local found
    for _, p in ipairs(problems) do
      if p.message == config.PASSWORD_MESSAGE then found = p end
    end
    assert.same({ line = 3, column = 14, message = config.PASSWORD_MESSAGE }, found)
  end)

  it("an empty file is valid; an unreadable one is a problem without a position", function()
    local plan = assert(config.parse("", "empty.yaml"))
    assert.same({}, plan.entries)
    local _, problems = config.load("/nonexistent/sync.yaml")
    assert.is_nil(problems[1].line)
    assert.matches("cannot read the config file", problems[1].message, 1, true)
    assert.equal("/nonexistent/sync.yaml: " .. problems[1].message,
      config.format_problem("/nonexistent/sync.yaml", problems[1]))
  end)
end)

describe("interpolate.string", function()
  local env = { A = "alpha", EMPTY = "" }
  it("replaces ${VAR} and ${VAR:-default}", function()
    assert.same({ "x-alpha-y", true }, { interpolate.string("x-${A}-y", env) })
    assert.same({ "dflt", true }, { interpolate.string("${MISSING:-dflt}", env) })
    assert.same({ "dflt", true }, { interpolate.string("${EMPTY:-dflt}", env) })
    assert.same({ "", true }, { interpolate.string("${MISSING:-}", env) })
    assert.same({ "${A}", true }, { interpolate.string("$${A}", env) })
    assert.same({ "cost: $5", false }, { interpolate.string("cost: $5", env) })
    assert.same({ "plain", false }, { interpolate.string("plain", env) })
  end)
  it("explains what it cannot replace", function()
    assert.same({ nil, "environment variable 'NOPE' is not set (write ${NOPE:-default} to give a default)" },
      { interpolate.string("${NOPE}", env) })
    assert.same({ nil, "unterminated '${' in '${A'" }, { interpolate.string("${A", env) })
    assert.same({ nil, "'${A B}' is not a variable reference (expected ${NAME} or ${NAME:-default})" },
      { interpolate.string("${A B}", env) })
  end)
end)

describe("schema helpers", function()
  it("suggests the closest key only when it is close", function()
    assert.equal("registries", schema.closest("registires", { "version", "registries", "sync" }))
    assert.equal("host", schema.closest("hots", { "host", "insecure" }))
    assert.is_nil(schema.closest("banana", { "host", "insecure" }))
    assert.equal(3, schema.distance("kitten", "sitting"))
  end)
  it("reads sizes", function()
    assert.equal(8388608, schema.parse_size("8MiB"))
    assert.equal(512000, schema.parse_size("512k"))
    assert.equal(1073741824, schema.parse_size("1 GiB"))
    assert.equal(100, schema.parse_size(100))
    assert.is_nil(schema.parse_size("8 parsecs"))
    assert.is_nil(schema.parse_size(1.5))
  end)
end)

describe("freightliner validate-config", function()
  it("exits 0 and says how much it found in a valid file", function()
    local status, out, err = h.run({ "validate-config", DATA .. "/good.yaml" })
    assert.equal(0, status)
    assert.equal(DATA .. "/good.yaml: valid (2 registries, 3 sync entries)\n", out)
    assert.equal("", err)
  end)

  it("exits 2 with one FILE:LINE:COLUMN: message line per problem, sorted", function()
    for _, path in ipairs(fixtures()) do
      local status, out = h.run({ "validate-config", path }, { env = "env -u FL_TEST_SURELY_UNSET_VAR" })
      assert.equal(2, status)
      local want = {}
      for i, e in ipairs(expected(path)) do want[i] = path .. ":" .. e end
      local got = {}
      for line in out:gmatch("[^\n]+") do got[#got + 1] = line end
      assert.same(want, got)
    end
  end)

  it("checks several files; any problem makes the status 2", function()
    local status, out = h.run({ "validate-config", DATA .. "/good.yaml", DATA .. "/bad-top-level.yaml" })
    assert.equal(2, status)
    assert.matches("good.yaml: valid", out, 1, true)
    assert.matches("bad-top-level.yaml:1:1: the top level must be a mapping", out, 1, true)
  end)

  it("usage errors and unreadable files", function()
    local status, _, err = h.run({ "validate-config" })
    assert.equal(2, status)
    assert.matches("validate-config needs a FILE", err, 1, true)
    status, _, err = h.run({ "validate-config", "--strict", "x.yaml" })
    assert.equal(2, status)
    assert.matches("unknown option '--strict'", err, 1, true)
    local out
    status, out = h.run({ "validate-config", "/nonexistent/sync.yaml" })
    assert.equal(2, status)
    assert.matches("^/nonexistent/sync.yaml: cannot read the config file", out)
    status, out = h.run({ "help", "validate-config" })
    assert.equal(0, status)
    assert.matches("usage: freightliner validate-config FILE", out, 1, true)
  end)
end)
