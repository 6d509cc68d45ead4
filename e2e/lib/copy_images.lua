-- copy_images.lua SPEC.json: copy a list of images with fl.copy, for the
-- end-to-end scenarios (run as `freightliner run copy_images.lua SPEC.json`).
--
-- SPEC: { images = { { src =, dst =, opts = {...}? }, ... },
--         opts = {...}              fl.copy options for every image
--         registries = { [host] = { ca_file =, username =, password_env =, insecure =, ... } },
--         configure = { workers =, attempts = },
--         concurrency = N }
-- Prints one JSON line per event: {"event":"start","src","dst"} when a copy
-- begins, {"event":"image","src","dst","ok":true,"digest",...} or
-- {"event":"image","ok":false,"error","code"} when it ends, and at the end
-- {"event":"done","counters":{...},"failed":N}. Exit status 1 if any failed.
local json = fl.json

local f = assert(io.open(arg[1], "rb"))
local spec = assert(json.decode(f:read("a")))
f:close()

if spec.configure and next(spec.configure) then fl.configure(spec.configure) end
for host, o in pairs(spec.registries or {}) do fl.registry_options(host, o) end

local function emit(t)
  io.stdout:write(json.encode(t), "\n")
  io.stdout:flush()
end

local FIELDS = { "digest", "source_digest", "up_to_date", "index_rewritten", "bytes", "blobs_copied",
  "blobs_skipped", "blobs_mounted", "manifests_pushed", "referrers_copied", "duration" }

local failed = 0
local function one(img)
  emit({ event = "start", src = img.src, dst = img.dst })
  local opts = img.opts or spec.opts
  if opts and next(opts) == nil then opts = nil end
  local r, msg, code = fl.copy(img.src, img.dst, opts)
  local ev = { event = "image", src = img.src, dst = img.dst, ok = r ~= nil }
  if r then
    for _, k in ipairs(FIELDS) do ev[k] = r[k] end
  else
    failed = failed + 1
    ev.error, ev.code = msg, code
  end
  emit(ev)
end

if (spec.concurrency or 1) <= 1 then
  for _, img in ipairs(spec.images) do one(img) end
else
  fl.parallel(spec.images, one, { concurrency = spec.concurrency })
end

local counters = {}
for k, v in pairs(fl.counters()) do counters[k] = v end
emit({ event = "done", counters = counters, failed = failed })
return failed > 0 and 1 or 0
