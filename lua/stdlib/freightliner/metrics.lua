--- freightliner.metrics: the metrics file of a run (--metrics-file), JSON
-- that monitoring can read.
--
--   metrics.normalise(counters) -> table    (the document written)
--   metrics.encode(counters)    -> string   (indented canonical JSON)
--   metrics.write(path, counters) -> true | nil, msg, "IO"  (atomic)
--
-- counters: what the caller counted (replicate.run's summary will do):
-- bytes_transferred, images_replicated, images_up_to_date, images_failed,
-- blobs_copied, blobs_skipped, blobs_mounted, retries (whole numbers,
-- default 0), duration_seconds (a number), repositories = { [repo] = {the
-- same counters but duration} }, and optionally run_id, interrupted and
-- source_manifest_gets (manifest GETs at the sources: pulls, on Docker Hub;
-- for the whole run only).
-- Anything else is left out, so the file's shape does not depend on who
-- wrote it.

local core = require("freightliner.core")
local canonical = require("freightliner.canonical")

local M = {}

M.COUNTERS = { "bytes_transferred", "images_replicated", "images_up_to_date", "images_failed",
               "blobs_copied", "blobs_skipped", "blobs_mounted", "retries" }

local function whole(v)
  return math.tointeger(v) or (type(v) == "number" and v == v and math.floor(v + 0.5)) or 0
end

local function counters_of(c)
  local out = {}
  for _, name in ipairs(M.COUNTERS) do out[name] = whole(c[name]) end
  return out
end

function M.normalise(c)
  c = c or {}
  local doc = counters_of(c)
  local d = tonumber(c.duration_seconds) or 0
  doc.duration_seconds = math.floor(d * 1000 + 0.5) / 1000
  doc.repositories = {}
  for repo, rc in pairs(c.repositories or {}) do
    if type(repo) == "string" and type(rc) == "table" then doc.repositories[repo] = counters_of(rc) end
  end
  if c.run_id ~= nil then doc.run_id = tostring(c.run_id) end
  if c.interrupted ~= nil then doc.interrupted = c.interrupted and true or false end
  if c.source_manifest_gets ~= nil then doc.source_manifest_gets = whole(c.source_manifest_gets) end
  return doc
end

function M.encode(c)
  return assert(canonical.encode(M.normalise(c), { indent = "  " })) .. "\n"
end

function M.write(path, c)
  return core.fs.atomic_write(path, M.encode(c))
end

return M
