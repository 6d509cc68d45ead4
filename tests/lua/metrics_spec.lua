-- freightliner.metrics: the metrics file.
local metrics = require("freightliner.metrics")
local cjson = require("cjson")
local h = require("helpers")

describe("freightliner.metrics", function()
  it("writes every counter, per destination too, on one line, atomically", function()
    local p = io.popen("mktemp -d /tmp/fl-metrics-XXXXXX")
    local dir = p:read("l")
    p:close()
    local path = dir .. "/metrics.json"
    assert.is_true(metrics.write(path, {
      bytes_transferred = 1048576, images_replicated = 3, images_up_to_date = 1, images_failed = 1,
      images_skipped_by_filter = 2, images_planned = 5,
      blobs_copied = 7, blobs_skipped = 2, blobs_mounted = 1, retries = 4, duration_seconds = 12.34567,
      destinations = { ["h:5000/team/app"] = { bytes_transferred = 1048576, images_replicated = 3 } },
      failed_images = { { image = "s/a:1", destination = "h:5000/team/app:1", code = "NOT_FOUND", message = "m" } },
      run_id = "abc", started_at = "2026-01-01T00:00:00Z", finished_at = "2026-01-01T00:00:12Z",
      interrupted = false, something_else = "dropped",
    }))
    local text = h.slurp(path)
    local m = cjson.decode(text)
    assert.same({
      bytes_transferred = 1048576, images_replicated = 3, images_up_to_date = 1, images_failed = 1,
      images_skipped_by_filter = 2, images_planned = 5,
      blobs_copied = 7, blobs_skipped = 2, blobs_mounted = 1, retries = 4, tags_deleted = 0, source_manifest_gets = 0,
      duration_seconds = 12.346,
      destinations = { ["h:5000/team/app"] = { bytes_transferred = 1048576, images_replicated = 3,
        images_up_to_date = 0, images_failed = 0, blobs_copied = 0, blobs_skipped = 0, blobs_mounted = 0 } },
      failed_images = { { image = "s/a:1", destination = "h:5000/team/app:1", code = "NOT_FOUND", message = "m" } },
      run_id = "abc", started_at = "2026-01-01T00:00:00Z", finished_at = "2026-01-01T00:00:12Z",
      interrupted = false, dry_run = false, resumes = 0,
    }, m)
    assert.matches('^{"blobs_copied":7,', text)
    assert.equal(1, select(2, text:gsub("\n", "")))
    p = io.popen("ls -A " .. dir)
    assert.equal("metrics.json\n", p:read("a"))
    p:close()
    os.execute("rm -rf " .. dir)
  end)

  it("fills in zeros, and writes {} and [] when there is nothing", function()
    local text = metrics.encode({})
    local m = cjson.decode(text)
    for _, name in ipairs(metrics.COUNTERS) do assert.equal(0, m[name]) end
    assert.equal(0, m.duration_seconds)
    assert.matches('"destinations":{}', text, 1, true)
    assert.matches('"failed_images":[]', text, 1, true)
    assert.is_nil(m.run_id)
  end)

  it("adds up the parts of a resumed run", function()
    local old = metrics.normalise({ run_id = "r", started_at = "t0", finished_at = "t1", interrupted = true,
      images_replicated = 10, images_failed = 1, images_planned = 16, bytes_transferred = 100,
      duration_seconds = 5, destinations = { d = { images_replicated = 10, images_failed = 1 } },
      failed_images = { { image = "x", code = "UNREACHABLE" } } })
    local new = { run_id = "r", started_at = "t2", finished_at = "t3", interrupted = false,
      images_replicated = 6, images_failed = 0, images_planned = 6, bytes_transferred = 50, duration_seconds = 2,
      destinations = { d = { images_replicated = 6 } }, failed_images = {} }
    local m = metrics.normalise(metrics.merge(old, new))
    assert.equal(16, m.images_replicated)
    assert.equal(0, m.images_failed)
    assert.equal(16, m.images_planned)
    assert.equal(150, m.bytes_transferred)
    assert.equal(7, m.duration_seconds)
    assert.equal("t0", m.started_at)
    assert.equal("t3", m.finished_at)
    assert.is_false(m.interrupted)
    assert.equal(1, m.resumes)
    assert.same({}, m.failed_images)
    assert.equal(16, m.destinations.d.images_replicated)
    assert.equal(0, m.destinations.d.images_failed)
  end)

  it("reports a write failure", function()
    local ok, msg, code = metrics.write("/nonexistent/dir/m.json", {})
    assert.is_nil(ok)
    assert.equal("IO", code)
    assert.matches("/nonexistent/dir", msg, 1, true)
  end)
end)
