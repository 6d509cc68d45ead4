-- freightliner.budget: the pause policy over a registry's rate-limit state
-- (reg:stats() as the C client reports it; the real headers are exercised
-- end to end in e2e/scenarios/scale.py).
local budget = require("freightliner.budget")
local core = require("freightliner.core")

local function source(stats)
  return { spec = "hub.example", stats = function() return stats end }
end

describe("freightliner.budget", function()
  it("does nothing without a floor", function()
    local b = budget.new()
    assert.is_false(b:wait(source({ requests = 0, ratelimit_remaining = 0 })))
  end)

  it("sends a probe first, then lets images through while the budget is high", function()
    local b = budget.new{ min_remaining = 5 }
    local st = { requests = 3 }
    local reg = source(st)
    assert.is_true(b:wait(reg)) -- nothing known yet: this image looks first
    st.requests, st.ratelimit_remaining, st.ratelimit_limit = 4, 50, 100
    b:probed(reg)
    assert.is_false(b:wait(reg))
    assert.is_false(b:wait(reg))
  end)

  it("a registry without the headers is never paused", function()
    local b = budget.new{ min_remaining = 5 }
    local reg = source({ requests = 1 })
    assert.is_true(b:wait(reg))
    b:probed(reg)
    assert.is_false(b:wait(reg))
  end)

  it("pauses below the floor for the window's share of the missing pulls, then probes", function()
    local logged = {}
    local b = budget.new{ min_remaining = 5, log = function(m) logged[#logged + 1] = m end }
    local st = { requests = 1, ratelimit_remaining = 90, ratelimit_limit = 100, ratelimit_window = 60 }
    local reg = source(st)
    assert.is_true(b:wait(reg))
    b:probed(reg)
    st.ratelimit_remaining = 3 -- 2 pulls short: 2 x 60/100 s = 1.2 s
    local t0 = core.now()
    assert.is_true(b:wait(reg)) -- after the pause, this image probes
    local took = core.now() - t0
    assert.is_true(took >= 1.1 and took < 3, "paused " .. took .. " s")
    assert.equal(1, #logged)
    assert.matches("hub.example: 3 pulls left (rate_limit.min_remaining 5); pausing 1 s, until", logged[1], 1, true)
    st.ratelimit_remaining = 80
    b:probed(reg)
    assert.is_false(b:wait(reg))
  end)

  it("takes the floor from the registry option first", function()
    local b = budget.new{ min_remaining = 1 }
    local reg = source({ requests = 1, ratelimit_remaining = 3 })
    reg.min_remaining = 2
    assert.is_true(b:wait(reg))
    b:probed(reg)
    assert.is_false(b:wait(reg)) -- 3 >= 2
    assert.has_error(function() b:wait({ spec = "x", min_remaining = -1, stats = function() return {} end }) end,
      "fl.registry option: min_remaining must be a non-negative integer")
    assert.has_error(function() budget.new{ min_remaining = 1.5 } end)
  end)
end)
