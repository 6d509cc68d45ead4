-- scripts/bench/history.py: the benchmark history and its regression check,
-- on results files shaped like the ones scripts/bench.sh writes.
local helpers = require("helpers")
local q = helpers.shell_quote
local script = helpers.root .. "/scripts/bench/history.py"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  return ok and 0 or status, out
end

local function results(path, commit, cold, opts)
  opts = opts or {}
  helpers.write_file(path, string.format([[{
  "meta": {"date": "2026-11-29T10:00:00Z", "commit": %q, "nproc": 2, "mem_total_mib": 24000,
           "cpu": %q, "config": {"runs": 3, "repos": %d}},
  "medians": {"freightliner": {"cold_wall_s": 4.0}},
  "goals": {"freightliner": [
    {"goal": "cold_wall_vs_skopeo", "value": %s, "limit": 0.6},
    {"goal": "cpu_vs_skopeo", "value": 0.30, "limit": 0.5},
    {"goal": "never_measured", "value": null, "limit": 1}]}
}]], commit, opts.cpu or "Test CPU", opts.repos or 8, cold))
end

describe("bench history", function()
  local dir, hist
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. q(dir)))
    hist = dir .. "/history.jsonl"
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  local function append(commit, cold, opts)
    local r = dir .. "/" .. commit .. ".json"
    results(r, commit, cold, opts)
    local status, out = sh(string.format("python3 %s append %s --history %s", q(script), q(r), q(hist)))
    assert.are.equal(0, status, out)
  end
  local function compare()
    return sh(string.format("python3 %s compare --history %s", q(script), q(hist)))
  end

  it("appends one JSON line per run with commit, machine kind and ratios", function()
    append("aaa", 0.50)
    append("bbb", 0.52)
    local lines = {}
    for l in io.lines(hist) do lines[#lines + 1] = l end
    assert.are.equal(2, #lines)
    assert.matches('"commit": "bbb"', lines[2])
    assert.matches('"freightliner.cold_wall_vs_skopeo": 0.52', lines[2])
    assert.matches('"machine": "Test CPU x2 23552 MiB"', lines[2])
    assert.not_matches("never_measured", lines[2])
  end)

  it("passes within 10% and fails above it", function()
    append("aaa", 0.50)
    append("bbb", 0.54) -- +8%
    local status, out = compare()
    assert.are.equal(0, status, out)
    assert.matches("no regression", out)
    append("ccc", 0.60) -- +11% against bbb
    status, out = compare()
    assert.are.equal(1, status, out)
    assert.matches("freightliner.cold_wall_vs_skopeo%s+0%.540%s+0%.600%s+%+11%.1%%%s+REGRESSION", out)
  end)

  it("compares only with runs of the same machine kind and size", function()
    append("aaa", 0.50)
    append("bbb", 0.90, { cpu = "Other CPU" })
    local status, out = compare()
    assert.are.equal(0, status, out)
    assert.matches("has no earlier run of the same machine kind", out)
    append("ccc", 0.90, { repos = 100 })
    status, out = compare()
    assert.are.equal(0, status, out)
    append("ddd", 0.60) -- same kind and size as aaa: +20%
    status, out = compare()
    assert.are.equal(1, status, out)
    assert.matches("against aaa", out)
  end)

  it("says so when there is no history", function()
    local status, out = compare()
    assert.are.equal(0, status, out)
    assert.matches("no history", out)
  end)
end)
