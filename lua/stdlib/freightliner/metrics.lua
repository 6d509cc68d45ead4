--- freightliner.metrics: the metrics file of a run (--metrics-file), JSON
-- that monitoring can read: one line of canonical JSON (sorted keys), the
-- same shape whoever writes it.
--
--   metrics.normalise(counters) -> table    (the document written)
--   metrics.encode(counters)    -> string   (one line of canonical JSON)
--   metrics.write(path, counters) -> true | nil, msg, "IO"  (atomic)
--   metrics.read(path)          -> document | nil (missing or not ours)
--   metrics.merge(old, new)     -> the counters of both parts of a resumed run
--
-- counters: bytes_transferred, images_replicated, images_up_to_date,
-- images_failed, images_skipped_by_filter, images_planned, blobs_copied,
-- blobs_skipped, blobs_mounted, retries, tags_deleted (prune),
-- source_manifest_gets (manifest GETs at the sources: pulls, on Docker Hub)
-- (whole numbers, default 0);
-- duration_seconds (a number); run_id, started_at, finished_at (ISO 8601
-- UTC strings); interrupted, dry_run (booleans); resumes (how many resumed
-- parts are merged in); failed_images = { { image, destination, code,
-- message } }; destinations = { ["host/repository"] = { the image and blob
-- counters } } (an OCI layout's key is oci:PATH). Anything else is left
-- out.

local core = require("freightliner.core")
local canonical = require("freightliner.canonical")
local json = require("freightliner.json")

local M = {}

M.COUNTERS = { "bytes_transferred", "images_replicated", "images_up_to_date", "images_failed",
               "images_skipped_by_filter", "images_planned",
               "blobs_copied", "blobs_skipped", "blobs_mounted", "retries", "tags_deleted",
               "source_manifest_gets" }

M.DESTINATION_COUNTERS = { "bytes_transferred", "images_replicated", "images_up_to_date", "images_failed",
                           "blobs_copied", "blobs_skipped", "blobs_mounted" }

local function whole(v)
  return math.tointeger(v) or (type(v) == "number" and v == v and math.floor(v + 0.5)) or 0
end

local function counters_of(c, names)
  local out = {}
  for _, name in ipairs(names) do out[name] = whole(c[name]) end
  return out
end

local function failure(f)
  return { image = tostring(f.image or ""), destination = f.destination and tostring(f.destination) or nil,
           code = tostring(f.code or "ERROR"), message = tostring(f.message or "") }
end

function M.normalise(c)
  c = c or {}
  local doc = counters_of(c, M.COUNTERS)
  local d = tonumber(c.duration_seconds) or 0
  doc.duration_seconds = math.floor(d * 1000 + 0.5) / 1000
  doc.destinations = {}
  for key, dc in pairs(c.destinations or {}) do
    if type(key) == "string" and type(dc) == "table" then
      doc.destinations[key] = counters_of(dc, M.DESTINATION_COUNTERS)
    end
  end
  doc.failed_images = canonical.array({})
  for _, f in ipairs(c.failed_images or {}) do doc.failed_images[#doc.failed_images + 1] = failure(f) end
  for _, k in ipairs({ "run_id", "started_at", "finished_at" }) do
    if c[k] ~= nil then doc[k] = tostring(c[k]) end
  end
  doc.interrupted = c.interrupted and true or false
  doc.dry_run = c.dry_run and true or false
  doc.resumes = whole(c.resumes)
  return doc
end

function M.encode(c)
  return assert(canonical.encode(M.normalise(c))) .. "\n"
end

function M.write(path, c)
  return core.fs.atomic_write(path, M.encode(c))
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local doc = json.decode(text)
  if type(doc) ~= "table" or type(doc.run_id) ~= "string" then return nil end
  return doc
end

--- The metrics of a resumed run: `old` (the interrupted part, as read back)
-- and `new` (the resumed part). Counters add up; images that failed before
-- were tried again, so the failures are the new part's; the start is the
-- old part's, the end the new part's.
function M.merge(old, new)
  local out = {}
  for _, name in ipairs(M.COUNTERS) do out[name] = whole(old[name]) + whole(new[name]) end
  out.images_failed = whole(new.images_failed)
  out.images_planned = math.max(whole(old.images_planned), whole(new.images_planned))
  out.images_skipped_by_filter = whole(new.images_skipped_by_filter)
  out.duration_seconds = (tonumber(old.duration_seconds) or 0) + (tonumber(new.duration_seconds) or 0)
  out.destinations = {}
  for _, part in ipairs({ old, new }) do
    for key, dc in pairs(part.destinations or {}) do
      local t = out.destinations[key] or {}
      for _, name in ipairs(M.DESTINATION_COUNTERS) do t[name] = whole(t[name]) + whole(dc[name]) end
      out.destinations[key] = t
    end
  end
  for key, t in pairs(out.destinations) do
    t.images_failed = whole(((new.destinations or {})[key] or {}).images_failed)
  end
  out.failed_images = new.failed_images
  out.run_id = new.run_id or old.run_id
  out.started_at = old.started_at or new.started_at
  out.finished_at = new.finished_at
  out.interrupted = new.interrupted
  out.dry_run = false
  out.resumes = whole(old.resumes) + 1
  return out
end

return M
