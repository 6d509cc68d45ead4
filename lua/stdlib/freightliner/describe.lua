--- freightliner.describe: a summary of a manifest (and its config) for
-- people (`inspect`) and for JSON output.
--
--   describe.is_index(parsed) -> boolean
--   describe.platforms(parsed) -> { {platform, digest, size, media_type} }
--   describe.manifest(m, name) -> info   (m from registry:manifest)
--   describe.add_config(info, config_json_text)
--   describe.text(info) -> string;  describe.to_json(info) -> table
--
-- info: { name, digest, media_type, size, kind = "index"|"image",
-- platforms (index), layers = { {digest, size, media_type} }, layers_size,
-- config = {digest, size}, total_size (config + layers), platform,
-- created, labels }.

local json = require("freightliner.json")
local progress = require("freightliner.progress")
local canonical = require("freightliner.canonical")

local M = {}

local INDEX_TYPES = {
  ["application/vnd.oci.image.index.v1+json"] = true,
  ["application/vnd.docker.distribution.manifest.list.v2+json"] = true,
}

function M.is_index(p)
  if type(p) ~= "table" then return false end
  return INDEX_TYPES[p.mediaType] or (p.mediaType == nil and type(p.manifests) == "table")
end

local function platform_string(p)
  if type(p) ~= "table" or not p.os then return "unknown" end
  local s = tostring(p.os) .. "/" .. tostring(p.architecture or "unknown")
  if p.variant then s = s .. "/" .. tostring(p.variant) end
  return s
end

function M.platforms(p)
  local out = canonical.array()
  for _, d in ipairs(type(p) == "table" and p.manifests or {}) do
    local plat = platform_string(d.platform)
    local annotations = type(d.annotations) == "table" and d.annotations or {}
    if annotations["vnd.docker.reference.type"] == "attestation-manifest" then
      plat = "attestation (" .. tostring(annotations["vnd.docker.reference.digest"] or "?") .. ")"
    end
    out[#out + 1] = { platform = plat, digest = d.digest, size = d.size, media_type = d.mediaType }
  end
  return out
end

function M.manifest(m, name)
  local p = m.parsed or {}
  local info = {
    name = name, digest = m.digest, media_type = m.media_type or p.mediaType, size = m.size or #(m.data or ""),
  }
  if M.is_index(p) then
    info.kind = "index"
    info.platforms = M.platforms(p)
    return info
  end
  info.kind = "image"
  info.layers, info.layers_size = canonical.array(), 0
  for _, l in ipairs(type(p.layers) == "table" and p.layers or {}) do
    info.layers[#info.layers + 1] = { digest = l.digest, size = l.size, media_type = l.mediaType }
    info.layers_size = info.layers_size + (math.tointeger(l.size) or 0)
  end
  if type(p.config) == "table" then
    info.config = { digest = p.config.digest, size = p.config.size, media_type = p.config.mediaType }
  end
  info.total_size = info.layers_size + (info.config and math.tointeger(info.config.size) or 0)
  info.artifact_type = p.artifactType
  return info
end

function M.add_config(info, text)
  local c = json.decode(text)
  if type(c) ~= "table" then return end
  if c.os then info.platform = platform_string(c) end
  if type(c.created) == "string" then info.created = c.created end
  local cc = type(c.config) == "table" and c.config or {}
  if type(cc.Labels) == "table" then info.labels = cc.Labels end
end

local function human(n)
  if math.type(n) ~= "integer" then return "?" end
  return progress.human(n)
end

function M.text(info)
  local lines = {}
  local function add(k, v)
    if v ~= nil then lines[#lines + 1] = string.format("%-12s %s", k .. ":", tostring(v)) end
  end
  add("Name", info.name)
  add("Digest", info.digest)
  add("Media type", info.media_type)
  if info.kind == "index" then
    add("Platforms", #info.platforms)
    for _, p in ipairs(info.platforms) do
      lines[#lines + 1] = string.format("  %-22s %s  %s", p.platform, tostring(p.digest), human(p.size))
    end
  else
    add("Artifact", info.artifact_type)
    add("Platform", info.platform)
    add("Created", info.created)
    if info.config then add("Config", string.format("%s  %s", info.config.digest, human(info.config.size))) end
    add("Layers", string.format("%d, %s", #info.layers, human(info.layers_size)))
    for _, l in ipairs(info.layers) do
      lines[#lines + 1] = string.format("  %s  %10s  %s", tostring(l.digest), human(l.size), tostring(l.media_type))
    end
    add("Total size", human(info.total_size))
    if info.labels and next(info.labels) then
      lines[#lines + 1] = "Labels:"
      local keys = {}
      for k in pairs(info.labels) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do lines[#lines + 1] = string.format("  %s=%s", k, tostring(info.labels[k])) end
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

function M.to_json(info)
  local out = {}
  for k, v in pairs(info) do out[k] = v end
  if out.labels and next(out.labels) == nil then out.labels = nil end
  return out
end

return M
