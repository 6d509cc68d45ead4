-- freightliner.metrics: the metrics file.
local metrics = require("freightliner.metrics")
local cjson = require("cjson")
local h = require("helpers")

describe("freightliner.metrics", function()
  it("writes every counter, per repository too, atomically", function()
    local p = io.popen("mktemp -d /tmp/fl-metrics-XXXXXX")
    local dir = p:read("l")
    p:close()
    local path = dir .. "/metrics.json"
    assert.is_true(metrics.write(path, {
      bytes_transferred = 1048576, images_replicated = 3, images_up_to_date = 1, images_failed = 1,
      blobs_copied = 7, blobs_skipped = 2, blobs_mounted = 1, retries = 4, duration_seconds = 12.34567,
      repositories = { ["team/app"] = { bytes_transferred = 1048576, images_replicated = 3 } },
      run_id = "abc", interrupted = false, something_else = "dropped",
    }))
    local text = h.slurp(path)
    local m = cjson.decode(text)
    assert.same({
      bytes_transferred = 1048576, images_replicated = 3, images_up_to_date = 1, images_failed = 1,
      blobs_copied = 7, blobs_skipped = 2, blobs_mounted = 1, retries = 4, duration_seconds = 12.346,
      repositories = { ["team/app"] = { bytes_transferred = 1048576, images_replicated = 3, images_up_to_date = 0,
        images_failed = 0, blobs_copied = 0, blobs_skipped = 0, blobs_mounted = 0, retries = 0 } },
      run_id = "abc", interrupted = false,
    }, m)
    assert.matches('^{\n  "blobs_copied": 7,\n', text)
    p = io.popen("ls -A " .. dir)
    assert.equal("metrics.json\n", p:read("a"))
    p:close()
    os.execute("rm -rf " .. dir)
  end)

  it("fills in zeros, and writes {} for no repositories", function()
    local text = metrics.encode({})
    local m = cjson.decode(text)
    for _, name in ipairs(metrics.COUNTERS) do assert.equal(0, m[name]) end
    assert.equal(0, m.duration_seconds)
    assert.matches('"repositories": {}', text, 1, true)
    assert.is_nil(m.run_id)
  end)

  it("reports a write failure", function()
    local ok, msg, code = metrics.write("/nonexistent/dir/m.json", {})
    assert.is_nil(ok)
    assert.equal("IO", code)
    assert.matches("/nonexistent/dir", msg, 1, true)
  end)
end)
