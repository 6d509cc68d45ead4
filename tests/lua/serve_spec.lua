-- freightliner.schedule and the policy half of freightliner.serve that
-- needs no listener: intervals, cron checks, next runs and their jitter,
-- API key files and their rules, sync entry names for serving. (The server
-- itself is tested end to end in e2e/scenarios/serve.py.)
local schedule = require("freightliner.schedule")
local serve = require("freightliner.serve")

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("schedule", function()
  it("reads intervals in s, m, h and d", function()
    assert.equal(90, schedule.interval("90s"))
    assert.equal(900, schedule.interval("15m"))
    assert.equal(7200, schedule.interval("2h"))
    assert.equal(86400, schedule.interval("1d"))
    for _, bad in ipairs({ "0s", "15", "m", "1.5h", "-1m", "15 m", "1w", "" }) do
      local n, msg = schedule.interval(bad)
      assert.is_nil(n, bad)
      assert.matches("expected an interval like 30s", msg)
    end
  end)

  it("checks cron expressions and names", function()
    assert.is_nil(schedule.check_cron("*/15 * * * *"))
    assert.is_nil(schedule.check_cron("@daily"))
    assert.matches("schedule: minute: 60%-60 is outside 0%-59", schedule.check_cron("60 * * * *"))
    assert.matches("never matches", schedule.check_cron("0 0 30 2 *"))
    assert.is_nil(schedule.check_name("nightly-mirror_2.x"))
    assert.matches("must be 1%-64", schedule.check_name("a/b"))
    assert.matches("must be 1%-64", schedule.check_name(".hidden"))
    assert.matches("must be 1%-64", schedule.check_name(string.rep("a", 65)))
  end)

  it("puts the next run one interval later plus at most a tenth of jitter", function()
    local e = { interval = "10m" }
    assert.equal(1000 + 600, schedule.next_run(e, 1000, function() return 0 end))
    assert.equal(1000 + 600 + 30, schedule.next_run(e, 1000, function() return 1 end))
    assert.equal(1000 + 2 + 0.2, schedule.next_run({ interval = "2s" }, 1000, function() return 1 end))
    -- a cron entry: the next quarter hour (jitter 0)
    local t = 1795983240 + 7 * 60
    local next = schedule.next_run({ schedule = "*/15 * * * *" }, t, function() return 0 end)
    assert.equal(0, next % 900)
    assert.is_true(next > t and next <= t + 900)
    assert.is_nil(schedule.next_run({}, t))
  end)
end)

describe("serve.read_keys", function()
  it("reads a key file and the environment, skipping comments and blank lines", function()
    local path = tmpfile("# keys\n\n  first-key-0123456789  \nsecond-key-0123456789\n")
    local keys = assert(serve.read_keys(path, " third-key-0123456789 ,,fourth-key-0123456789"))
    assert.same({ "first-key-0123456789", "second-key-0123456789", "third-key-0123456789",
                  "fourth-key-0123456789" }, keys)
    os.remove(path)
    assert.same({}, serve.read_keys(nil, nil))
  end)

  it("refuses short keys and keys with spaces, naming the key's position only", function()
    local keys, msg = serve.read_keys(nil, "good-key-0123456789,short")
    assert.is_nil(keys)
    assert.matches("API key 2 is too short", msg)
    assert.not_matches("short,", msg)
    keys, msg = serve.read_keys(nil, "has a space in the key 0123")
    assert.is_nil(keys)
    assert.matches("API key 1", msg)
    keys, msg = serve.read_keys("/nonexistent/keys", nil)
    assert.is_nil(keys)
    assert.matches("cannot read the API key file", msg)
  end)
end)

describe("serve.load_config", function()
  local head = "version: 1\nregistries:\n  a: { host: \"127.0.0.1:1\" }\n  b: { host: \"127.0.0.1:2\" }\nsync:\n"
  local entry = "  - source: { registry: a, repository: x }\n    destination: { registry: b }\n"

  it("names entries (name: or sync-N) and keeps their schedules", function()
    local path = tmpfile(head .. entry .. "    name: nightly\n    interval: 15m\n" .. entry
      .. "    schedule: \"0 3 * * *\"\n")
    local cfg = assert(serve.load_config(path))
    assert.equal("nightly", cfg.plan.entries[1].name)
    assert.equal("15m", cfg.byname.nightly.interval)
    assert.equal("sync-2", cfg.plan.entries[2].name)
    assert.equal("0 3 * * *", cfg.byname["sync-2"].schedule)
    os.remove(path)
  end)

  it("refuses duplicate names, interval with schedule, and bad values with positions", function()
    local path = tmpfile(head .. entry .. "    name: x\n" .. entry .. "    name: x\n")
    local cfg, msg = serve.load_config(path)
    assert.is_nil(cfg)
    assert.matches("sync%[2%]%.name: 'x' names another entry too", msg)
    os.remove(path)
    path = tmpfile(head .. entry .. "    interval: 1m\n    schedule: \"* * * * *\"\n")
    cfg, msg = serve.load_config(path)
    assert.is_nil(cfg)
    assert.matches("give interval or schedule, not both", msg)
    os.remove(path)
    path = tmpfile(head .. entry .. "    interval: soon\n    name: \"a/b\"\n" .. entry
      .. "    schedule: \"61 * * * *\"\n")
    cfg, msg = serve.load_config(path)
    assert.is_nil(cfg)
    assert.matches(":8:%d+: sync%[1%]%.interval: expected an interval like 30s", msg)
    assert.matches("sync%[1%]%.name: 'a/b' must be", msg)
    assert.matches("sync%[2%]%.schedule: schedule: minute", msg)
    os.remove(path)
  end)
end)
