--- freightliner.checkpoint: the progress file of a run, so that `resume`
-- can finish what an interrupted run started.
--
--   checkpoint.create(path, plan [, { force = true }]) -> cp | nil, msg, CODE
--       writes a new checkpoint at once. It will not replace a file that is
--       not a checkpoint, nor (without force) one with unfinished work.
--   checkpoint.load(path) -> cp | nil, msg, CODE
--       refuses (and never modifies) an empty, truncated, corrupted
--       (checksum mismatch), foreign or other-version file.
--   checkpoint.key(src, dst) -> "src -> dst";  checkpoint.split(key) -> src, dst
--   cp:mark(key, state [, fields]) -> true | nil, msg, "IO"
--       state: pending | in_progress | done | failed | skipped; fields:
--       digest, error, code, and flush = true to write now. The file is
--       rewritten atomically at most every 0.5 s, except that done and
--       failed are always written at once.
--   cp:flush() -> true | nil, msg, "IO"     (writes if anything changed)
--   cp:state(key) -> state | nil;  cp:entry(key) -> copy of the record
--   cp:pending() -> { {key, src, dst, state, error} } still to do (pending,
--       in_progress, failed), sorted by key
--   cp:counts() -> { pending =, in_progress =, done =, failed =, skipped = }
--   cp.path, cp.run_id, cp.plan, cp.created
--
-- The file is canonical JSON (freightliner.canonical): { format =
-- "freightliner-checkpoint", version = 1, run_id, created, updated, plan,
-- images = { [key] = { state, digest, error, code, updated } }, checksum =
-- "sha256:<hex of the canonical encoding of everything but checksum>" }.

local core = require("freightliner.core")
local json = require("freightliner.json")
local canonical = require("freightliner.canonical")

local M = {}

M.FORMAT = "freightliner-checkpoint"
M.VERSION = 1
M.INTERVAL = 0.5

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

local function write(self)
  self.doc.updated = now_iso()
  local sum, err = seal(self.doc)
  if not sum then return nil, "cannot record the checkpoint: " .. err, "INVALID" end
  self.doc.checksum = sum
  local text
  text, err = canonical.encode(self.doc)
  if not text then return nil, "cannot record the checkpoint: " .. err, "INVALID" end
  local ok, msg, code = core.fs.atomic_write(self.path, text .. "\n")
  if not ok then
    if not self.warned then
      self.warned = true
      core.log.log("warn", string.format("cannot write checkpoint %s: %s", self.path, msg))
    end
    return nil, msg, code
  end
  self.dirty = false
  self.last_write = core.now()
  return true
end

local function wrap(path, doc)
  return setmetatable({ path = path, doc = doc, run_id = doc.run_id, plan = doc.plan,
                        created = doc.created, dirty = false, last_write = 0 }, Checkpoint)
end

-- Read a file and check that it is a sound checkpoint. Never writes.
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
      return nil, string.format("checkpoint %s is corrupted (%s); delete it to start over", path, derr), "INVALID"
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
  local corrupted = "checkpoint %s is corrupted (%s); delete it to start over"
  if type(doc.checksum) ~= "string" then
    return nil, string.format(corrupted, path, "it has no checksum"), "INVALID"
  end
  local sum = seal(doc)
  if sum ~= doc.checksum then
    return nil, string.format(corrupted, path, "its checksum does not match its content"), "INVALID"
  end
  if type(doc.images) ~= "table" or type(doc.run_id) ~= "string" then
    return nil, string.format(corrupted, path, "images or run_id missing"), "INVALID"
  end
  for key, e in pairs(doc.images) do
    if type(key) ~= "string" or type(e) ~= "table" or not STATES[e.state] then
      return nil, string.format(corrupted, path, "bad record for " .. tostring(key)), "INVALID"
    end
  end
  if doc.plan == json.null then doc.plan = nil end
  return doc
end

function M.load(path)
  local doc, msg, code = read(path)
  if not doc then return nil, msg, code end
  return wrap(path, doc)
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
  local w, msg, code = write(cp)
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
  if state == "pending" and old and old.digest and not e.digest then e.digest = old.digest end
  self.doc.images[key] = e
  self.dirty = true
  if fields.flush or state == "done" or state == "failed" or core.now() - self.last_write >= M.INTERVAL then
    return write(self)
  end
  return true
end

function Checkpoint:flush()
  if not self.dirty then return true end
  return write(self)
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
