--- freightliner.airgap: move what a sync file selects into a site with no
-- network, as one file.
--
--   airgap.export(job, file, opts) -> status   (freightliner export)
--   airgap.import(file, destination, opts) -> status (freightliner import)
--
-- export copies every image the job's sync entries select, with its
-- referrers (signatures, attestations, SBOMs), into oci-archive:FILE, each
-- under a name made from its repository and tag, and adds a contents
-- manifest (freightliner-contents.json: every image's source, repository,
-- tag, name in the archive and digest). The archive is written through its
-- working directory FILE.parts (src/registry/archive.h): an interrupted or
-- partly failed export leaves no FILE, and running it again finishes it,
-- copying only what is missing. Images a `verify:` entry refuses are left
-- out and reported (exit 1), and do not hold the archive back.
--
-- import reads the contents manifest and copies every image to
-- DESTINATION/[PREFIX/]REPOSITORY:TAG by the digest the manifest records, so
-- the manifest is checked against it and every blob against its own digest
-- as it streams; referrers go along. It is resumable as any copy is: what
-- the destination already has is skipped.

local core = require("freightliner.core")
local copy = require("freightliner.copy")
local replicate = require("freightliner.replicate")
local json = require("freightliner.json")

local M = {}

M.CONTENTS = "freightliner-contents.json"

local function stderr(fmt, ...)
  io.stderr:write("freightliner: ", string.format(fmt, ...), "\n")
end

--- The name an image gets in the archive: a valid tag, unique in `used`.
function M.archive_name(repo, tag, used)
  local name = (repo:gsub("/", "_")) .. "_" .. tag
  name = name:gsub("[^%w_.%-]", "_")
  if #name > 128 or used[name] then
    local h = core.digest.sha256(repo .. ":" .. tag):sub(8, 23)
    name = name:sub(1, 111) .. "-" .. h
  end
  used[name] = true
  return name
end

-- "oci-archive:FILE" (or a plain FILE) -> FILE | nil, message
local function archive_file(to)
  local file = to:match("^oci%-archive:(.+)$") or (not to:find("^%a[%w%-]*:") and to) or nil
  if not file then
    return nil, string.format("export writes an oci-archive (oci-archive:FILE), not '%s'", to)
  end
  if file:find(":", 1, true) then
    return nil, "give the archive without a tag: each image gets its own name in it"
  end
  return file
end

--- Export: see the module comment. job is a sync job (runner/config);
-- opts: { parallel, progress, dry_run }. Returns the exit status.
function M.export(job, to, opts)
  opts = opts or {}
  local runner = require("freightliner.runner")
  local file, msg = archive_file(to)
  if not file then return runner.usage_error(msg, "export") end
  local plan, code
  plan, msg, code = runner.plan(job)
  if not plan then
    stderr("%s", msg)
    return code == "INVALID" and 2 or 1
  end
  local used, images = {}, {}
  for _, it in ipairs(plan.items) do
    local name = M.archive_name(it.repository, it.tag, used)
    it.dst = "oci-archive:" .. file .. ":" .. name
    it.destination = nil -- the plan's destination is replaced by the archive
    it.key = it.src .. " -> " .. it.dst
    it.copy = it.copy or {}
    it.copy.referrers = true -- signatures travel with their images
    images[#images + 1] = { source = it.src, repository = it.repository, tag = it.tag, name = name }
  end
  local summary = replicate.run(plan, {
    parallel = opts.parallel or job.parallel, dry_run = opts.dry_run, progress = opts.progress,
    copy = {},
  })
  if opts.dry_run then
    replicate.print_summary(summary)
    return summary.status
  end
  replicate.print_summary(summary)
  if core.engine.signal() then
    stderr("interrupted: %s not written; run the same export again to finish it", file)
    copy.shutdown()
    return summary.status
  end
  local blocking = 0
  for _, f in ipairs(summary.failures) do
    if f.code ~= "UNVERIFIED" then blocking = blocking + 1 end
  end
  if blocking > 0 or #summary.errors > 0 then
    stderr("%s not written: %d images failed; fix that and run the same export again to finish it "
      .. "(what was copied is kept in %s.parts)", file, blocking + #summary.errors, file)
    copy.shutdown()
    return 1
  end
  -- the contents manifest: what is in the archive, by digest
  local listed = {}
  for _, img in ipairs(images) do
    local d = copy.resolve("oci-archive:" .. file .. ":" .. img.name, "destination")
    local head = d and d.registry.ep:manifest_head("image", img.name)
    if head then
      img.digest, img.media_type = head.digest, head.media_type
      listed[#listed + 1] = img
    end
  end
  if #listed == 0 then
    stderr("%s not written: no image was exported", file)
    copy.shutdown()
    return 1
  end
  local ok, err = core.fs.atomic_write(file .. ".parts/" .. M.CONTENTS, json.encode({
    version = 1, freightliner = core.version, images = listed,
  }) .. "\n")
  if not ok then
    stderr("writing the contents manifest: %s", err)
    copy.shutdown()
    return 1
  end
  local fok, fmsg, fcode = copy.finish_archives()
  copy.shutdown()
  if not fok then
    stderr("writing %s: %s (%s)", file, fmsg, fcode)
    return 1
  end
  io.stdout:write(string.format("wrote %s: %d images (contents in %s)\n", file, #listed, M.CONTENTS))
  return summary.status
end

--- The contents manifest of an exported archive: { images = {...} } | nil, msg, CODE
function M.contents(file)
  local ep, msg, code = core.archive.open("oci", file, "r")
  if not ep then return nil, msg, code end
  local text
  text, msg, code = core.archive.member(ep, M.CONTENTS)
  ep:close()
  if not text then
    if code == "NOT_FOUND" then
      return nil, string.format("%s is not a Freightliner export (no %s in it); copy its images "
        .. "one by one with: freightliner replicate oci-archive:%s:TAG DESTINATION", file, M.CONTENTS, file), "INVALID"
    end
    return nil, msg, code
  end
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" or type(doc.images) ~= "table" then
    return nil, string.format("%s: %s is not a contents manifest", file, M.CONTENTS), "INVALID"
  end
  for i, img in ipairs(doc.images) do
    if type(img.repository) ~= "string" or type(img.tag) ~= "string"
        or type(img.digest) ~= "string" or not img.digest:match("^sha256:%x+$") then
      return nil, string.format("%s: %s: image %d is incomplete", file, M.CONTENTS, i), "INVALID"
    end
  end
  return doc
end

--- Import: see the module comment. opts: { dest_prefix, parallel, progress,
-- dry_run, verify, force }. Returns the exit status.
function M.import(file, destination, opts)
  opts = opts or {}
  local doc, msg, code = M.contents(file)
  if not doc then
    stderr("%s", msg)
    return (code == "INVALID" or code == "NOT_FOUND") and 2 or 1
  end
  local plan = { items = {}, skipped = {}, errors = {} }
  for _, img in ipairs(doc.images) do
    local repo = opts.dest_prefix and (opts.dest_prefix .. "/" .. img.repository) or img.repository
    local item = {
      src = "oci-archive:" .. file .. ":" .. img.digest, -- by digest: checked as it is read
      dst = destination .. "/" .. repo .. ":" .. img.tag,
      repository = img.repository, tag = img.tag,
    }
    item.key = item.src .. " -> " .. item.dst
    plan.items[#plan.items + 1] = item
  end
  local summary = replicate.run(plan, {
    parallel = opts.parallel, dry_run = opts.dry_run, progress = opts.progress,
    copy = { referrers = true, verify = opts.verify, force = opts.force },
  })
  replicate.print_summary(summary)
  copy.shutdown()
  return summary.status
end

return M
