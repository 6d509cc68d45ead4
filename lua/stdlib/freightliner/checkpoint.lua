--- freightliner.checkpoint: the progress file of a run, so that `resume`
-- can finish what an interrupted run started.
--
--   checkpoint.create(path, plan [, { force = true }]) -> cp | nil, msg, CODE
--       writes a new checkpoint at once. It will not replace a file that is
--       not a checkpoint, nor (without force) one with unfinished work.
--   checkpoint.load(path) -> cp | nil, msg, CODE
--       refuses (and never modifies) an empty, truncated, corrupted
--       (checksum mismatch), foreign or other-version file. A sound file is
--       compacted (see below) by the first write of the object returned.
--   checkpoint.key(src, dst) -> "src -> dst";  checkpoint.split(key) -> src, dst
--   cp:mark(key, state [, fields]) -> true | nil, msg, "IO"
--       state: pending | in_progress | done | failed | skipped; fields:
--       digest, error, code, and flush = true to write now. Records are
--       appended at most every 0.5 s (or every 512 records), except that
--       done and failed are appended at once; the file is synced to disk at
--       most every second.
--   cp:flush() -> true | nil, msg, "IO"     (appends what is held, syncs)
--   cp:compact() -> true | nil, msg, "IO"   (rewrites the snapshot; the end
--       of a run does this)
--   cp:state(key) -> state | nil;  cp:entry(key) -> copy of the record
--   cp:pending() -> { {key, src, dst, state, error} } still to do (pending,
--       in_progress, failed), sorted by key
--   cp:counts() -> { pending =, in_progress =, done =, failed =, skipped = }
--   cp.path, cp.run_id, cp.plan, cp.created
--
-- The file is a journal. Its first line is a snapshot in canonical JSON
-- (freightliner.canonical): { format = "freightliner-checkpoint", version =
-- 1, run_id, created, updated, plan, images = { [key] = { state, digest,
-- error, code, updated } }, checksum = "sha256:<hex of the canonical
-- encoding of everything but checksum>" }. Every later line is one state
-- change: "<first 16 hex of the SHA-256 of JSON> <JSON>\n", JSON being the
-- canonical encoding of { k = key, s = state, d = digest, e = error, c =
-- code, t = updated }, applied in order over the snapshot. Each record is
-- one write(2), so a killed process leaves whole records; only a crash of
-- the machine can leave a torn last line (no newline, or NUL bytes), which
-- load drops. A damaged line anywhere else is refused. Compaction writes the
-- snapshot alone, atomically (temp file, fsync, rename); a freshly created
-- or compacted checkpoint is one JSON document.

local core = require("freightliner.core")
local json = require("freightliner.json")
local canonical = require("freightliner.canonical")

local M = {}

M.FORMAT = "freightliner-checkpoint"
M.VERSION = 1
M.INTERVAL = 0.5       -- seconds a record may be held before it is appended
M.BATCH = 512          -- records held at most
M.SYNC_INTERVAL = 1.0  -- seconds between fdatasync calls
M.COMPACT_AFTER = 4096 -- journal records before a flush compacts (or 4 per image)

local STATES = { pending = true, in_progress = true, done = true, failed = true, skipped = true }
M.STATES = STATES

local Checkpoint = {}
Checkpoint.__index = Checkpoint
Checkpoint.__name = "freightliner.checkpoint"

local function now_iso()
  local t = core.fs.time()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03dZ", math.floor((t % 1) * 1000))
end

function M.key(src, dst)
  return src .. " -> " .. dst
end

function M.split(key)
  local src, dst = key:match("^(.-) %-> (.*)$")
  return src or key, dst
end

-- The document without its checksum, and its checksum.
local function seal(doc)
  local body = {}
  for k, v in pairs(doc) do
    if k ~= "checksum" then body[k] = v end
  end
  local text, err = canonical.encode(body)
  if not text then return nil, err end
  return core.digest.sha256(text)
end

-- "<16 hex> <json>\n" for one state change.
local function record(key, e)
  local text = assert(canonical.encode({ k = key, s = e.state, d = e.digest, e = e.error, c = e.code,
                                         t = e.updated }))
  return core.digest.sha256(text):sub(8, 23) .. " " .. text .. "\n"
end

local function warn_once(self, msg)
  if not self.warned then
    self.warned = true
    core.log.log("warn", msg)
  end
end

local function close_journal(self)
  if self.journal then self.journal:close() end
  self.journal = nil
end

-- Rewrite the file as the snapshot alone (atomically) and reopen the journal.
local function compact(self)
  self.doc.updated = now_iso()
  local sum, err = seal(self.doc)
  if not sum then return nil, "cannot record the checkpoint: " .. err, "INVALID" end
  self.doc.checksum = sum
  local text
  text, err = canonical.encode(self.doc)
  if not text then return nil, "cannot record the checkpoint: " .. err, "INVALID" end
  close_journal(self)
  local ok, msg, code = core.fs.atomic_write(self.path, text .. "\n")
  if not ok then
    msg = string.format("cannot write checkpoint %s: %s", self.path, msg)
    warn_once(self, msg)
    return nil, msg, code
  end
  self.held, self.records, self.broken = {}, 0, false
  self.last_write, self.last_sync = core.now(), core.now()
  return true
end

-- Append what is held (one write); sync when due or asked. After a failed
-- append (which may have left part of a line) the next write compacts, so a
-- damaged line never ends up followed by good ones.
local function write(self, sync)
  if self.broken then return compact(self) end
  if #self.held > 0 then
    local msg, code
    if not self.journal then
      self.journal, msg, code = core.journal.open(self.path)
      if not self.journal then
        msg = string.format("cannot write checkpoint %s: %s", self.path, msg)
        warn_once(self, msg)
        return nil, msg, code
      end
    end
    local ok
    ok, msg, code = self.journal:append(table.concat(self.held))
    if not ok then
      self.broken = true
      msg = string.format("cannot write checkpoint %s: %s", self.path, msg)
      warn_once(self, msg)
      return nil, msg, code
    end
    self.records = self.records + #self.held
    self.held = {}
    self.last_write = core.now()
    self.unsynced = true
  end
  if self.unsynced and (sync or core.now() - self.last_sync >= M.SYNC_INTERVAL) then
    local ok, msg, code = self.journal:sync()
    if not ok then
      msg = string.format("cannot sync checkpoint %s: %s", self.path, msg)
      warn_once(self, msg)
      return nil, msg, code
    end
    self.unsynced = false
    self.last_sync = core.now()
  end
  return true
end

local function wrap(path, doc)
  return setmetatable({ path = path, doc = doc, run_id = doc.run_id, plan = doc.plan,
                        created = doc.created, held = {}, records = 0, last_write = 0,
                        last_sync = core.now(), nimages = 0 }, Checkpoint)
end

local function corrupted(path, why)
  return nil, string.format("checkpoint %s is corrupted (%s); delete it to start over", path, why), "INVALID"
end

-- The snapshot line: a sound checkpoint document, or nil, message, CODE.
local function read_snapshot(path, text)
  local foreign = string.format("%s is not a Freightliner checkpoint", path)
  if not text:match("^%s*{") then
    return nil, foreign .. " (it is not a JSON object)", "INVALID"
  end
  local doc, derr = json.decode(text)
  if doc == nil then
    if text:find('"format":"' .. M.FORMAT .. '"', 1, true) then
      if not text:match("}%s*$") then
        return nil, string.format("checkpoint %s is truncated (it ends before its JSON does); "
          .. "delete it to start over", path), "INVALID"
      end
      return corrupted(path, derr)
    end
    return nil, foreign .. " (not valid JSON)", "INVALID"
  end
  if type(doc) ~= "table" or doc.format ~= M.FORMAT then
    return nil, foreign .. string.format(' (no "format": "%s")', M.FORMAT), "INVALID"
  end
  if doc.version == nil then
    return nil, string.format("checkpoint %s has no format version (it was not written by freightliner, or was "
      .. "edited); delete it to start over", path), "INVALID"
  end
  if doc.version ~= M.VERSION then
    return nil, string.format("checkpoint %s has version %s; this freightliner reads version %d",
      path, tostring(doc.version), M.VERSION), "UNSUPPORTED"
  end
  if type(doc.checksum) ~= "string" then return corrupted(path, "it has no checksum") end
  if seal(doc) ~= doc.checksum then return corrupted(path, "its checksum does not match its content") end
  if type(doc.images) ~= "table" or type(doc.run_id) ~= "string" then
    return corrupted(path, "images or run_id missing")
  end
  for key, e in pairs(doc.images) do
    if type(key) ~= "string" or type(e) ~= "table" or not STATES[e.state] then
      return corrupted(path, "bad record for " .. tostring(key))
    end
  end
  if doc.plan == json.null then doc.plan = nil end
  return doc
end

-- One journal line (without its newline) applied to doc; false if damaged.
local function apply(doc, line)
  local sum, text = line:match("^(%x+) ({.*})$")
  if not sum or #sum ~= 16 or core.digest.sha256(text):sub(8, 23) ~= sum then return false end
  local r = json.decode(text)
  if type(r) ~= "table" or type(r.k) ~= "string" or not STATES[r.s] then return false end
  doc.images[r.k] = { state = r.s, digest = r.d, error = r.e, code = r.c, updated = r.t }
  return true
end

-- Read a file and check that it is a sound checkpoint. Never writes.
-- Returns doc, number of journal records, whether a torn tail was dropped.
local function read(path)
  local f, err = io.open(path, "rb")
  if not f then
    local missing = err and err:find("No such file", 1, true)
    return nil, string.format("cannot open checkpoint %s: %s", path, err), missing and "NOT_FOUND" or "IO"
  end
  local text = f:read("a")
  f:close()
  if not text or text:match("^%s*$") then
    return nil, string.format("checkpoint %s is empty (truncated?); delete it to start over", path), "INVALID"
  end
  local first = text:find("\n", 1, true)
  local doc, msg, code = read_snapshot(path, first and text:sub(1, first - 1) or text)
  if not doc then return nil, msg, code end
  local n, torn, pos = 0, false, first and first + 1 or #text + 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    local line = text:sub(pos, (nl or #text + 1) - 1)
    local last = not nl or nl == #text
    if not apply(doc, line) then
      -- a crash of the machine can tear the last line only
      if last and (not nl or line:find("\0", 1, true)) then
        torn = true
        break
      end
      return nil, string.format("checkpoint %s is corrupted (its checksum does not match its content) at "
        .. "journal record %d; delete it to start over", path, n + 1), "INVALID"
    end
    n = n + 1
    pos = (nl or #text) + 1
  end
  return doc, n, torn
end

function M.load(path)
  local doc, records, torn = read(path)
  if not doc then return nil, records, torn end
  local cp = wrap(path, doc)
  if torn then
    core.log.log("warn", string.format("checkpoint %s: dropped a torn last record (the run was cut short); "
      .. "that image is copied again", path))
  end
  -- compacted by its first write (not here: load only reads), so that no
  -- record is ever appended after a torn one
  cp.broken = records > 0 or torn
  for _ in pairs(doc.images) do cp.nimages = cp.nimages + 1 end
  return cp
end

function M.create(path, plan, opts)
  opts = opts or {}
  local exists = core.fs.exists(path)
  if exists and not opts.force then
    local old, msg = read(path)
    if not old then
      return nil, string.format("will not overwrite %s: %s", path, msg), "EXISTS"
    end
    for key, e in pairs(old.images) do
      if e.state ~= "done" and e.state ~= "skipped" then
        return nil, string.format("checkpoint %s has unfinished work (%s is %s); run 'freightliner resume %s' "
          .. "to finish it, or delete the file", path, key, e.state, path), "EXISTS"
      end
    end
  end
  local t = now_iso()
  local doc = { format = M.FORMAT, version = M.VERSION, run_id = opts.run_id or core.fs.random_id(),
                created = t, updated = t, plan = plan, images = {} }
  local ok, err = canonical.encode(plan)
  if not ok then return nil, "the plan cannot be recorded in a checkpoint: " .. err, "INVALID" end
  local cp = wrap(path, doc)
  local w, msg, code = compact(cp)
  if not w then return nil, msg, code end
  return cp
end

function Checkpoint:state(key)
  local e = self.doc.images[key]
  return e and e.state
end

function Checkpoint:entry(key)
  local e = self.doc.images[key]
  if not e then return nil end
  local copy = {}
  for k, v in pairs(e) do copy[k] = v end
  return copy
end

function Checkpoint:mark(key, state, fields)
  if type(key) ~= "string" then error("checkpoint:mark: the key must be a string", 2) end
  if not STATES[state] then
    error(string.format("checkpoint:mark: unknown state '%s' (pending, in_progress, done, failed, skipped)",
      tostring(state)), 2)
  end
  fields = fields or {}
  local e = { state = state, updated = now_iso() }
  for _, f in ipairs({ "digest", "error", "code" }) do
    if fields[f] ~= nil then e[f] = tostring(fields[f]) end
  end
  local old = self.doc.images[key]
  if not old then self.nimages = self.nimages + 1 end
  if state == "pending" and old and old.digest and not e.digest then e.digest = old.digest end
  self.doc.images[key] = e
  self.held[#self.held + 1] = record(key, e)
  if fields.flush or state == "done" or state == "failed" or #self.held >= M.BATCH
      or core.now() - self.last_write >= M.INTERVAL then
    return write(self, fields.flush)
  end
  return true
end

function Checkpoint:flush()
  if #self.held == 0 and not self.unsynced and not self.broken then return true end
  if self.records + #self.held > math.max(M.COMPACT_AFTER, 4 * self.nimages) then return compact(self) end
  return write(self, true)
end

function Checkpoint:compact()
  return compact(self)
end

function Checkpoint:close()
  local ok, msg, code = self:flush()
  close_journal(self)
  return ok, msg, code
end

function Checkpoint:pending()
  local out = {}
  for key, e in pairs(self.doc.images) do
    if e.state == "pending" or e.state == "in_progress" or e.state == "failed" then
      local src, dst = M.split(key)
      out[#out + 1] = { key = key, src = src, dst = dst, state = e.state, error = e.error }
    end
  end
  table.sort(out, function(a, b) return a.key < b.key end)
  return out
end

function Checkpoint:counts()
  local c = { pending = 0, in_progress = 0, done = 0, failed = 0, skipped = 0 }
  for _, e in pairs(self.doc.images) do c[e.state] = c[e.state] + 1 end
  return c
end

function Checkpoint:__tostring()
  return string.format("checkpoint %s (run %s)", self.path, self.run_id)
end

M.Checkpoint = Checkpoint

return M
