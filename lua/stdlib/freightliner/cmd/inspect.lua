--- freightliner inspect REF: what an image is (manifest, platforms, layers, config).
local exitcode = require("freightliner.exitcode")
local args = require("freightliner.args")
local regflags = require("freightliner.regflags")
local describe = require("freightliner.describe")
local canonical = require("freightliner.canonical")
local fl = require("freightliner")

local usage = [==[usage: freightliner inspect REF [--raw | --config] [--platform OS/ARCH[/VARIANT]]
                           [--format json] [registry options]

Shows an image: its digest and media type; for an index its platforms; for
an image its layers with sizes, the total size, and from its config the
platform, creation time and labels. REF is an image reference
(127.0.0.1:5000/team/app:v1, registry.example.com/app@sha256:...) or an OCI
layout (oci:PATH:TAG).

options:
  --raw                  print the manifest exactly as stored
  --config               print the image's config JSON exactly as stored
  --platform P           for an index: inspect the image of platform P
]==] .. regflags.HELP .. [[


exit status: 0 ok, 1 the registry failed (message and code on stderr),
2 usage error.]]

local spec = regflags.with({ { name = "raw" }, { name = "config" }, { name = "platform", value = true } })

-- The store, the reference inside it, the name to show and the repository
-- for REF; or nil, message, CODE ("USAGE" for a malformed REF).
local function open(ref, o)
  local path = ref:match("^oci:(.+)$")
  if path then
    local dir, tag = path:match("^(.*[^/]):([%w_][%w_.%-]*)$")
    dir, tag = dir or path, tag or "latest"
    local store, msg, code = fl.registry("oci:" .. dir, { create = false })
    if not store then return nil, msg, code end
    return store, "image:" .. tag, ref
  end
  local image, msg = require("freightliner.clicheck").image(ref)
  if not image then return nil, msg, "USAGE" end
  local r = image.ref
  local store, code
  store, msg, code = fl.registry(image.scheme and (image.scheme .. "://" .. r.api_host) or r.api_host,
    regflags.options(o))
  if not store then return nil, msg, code end
  local inner = r.digest and (r.repository .. "@" .. r.digest) or (r.repository .. ":" .. r.tag)
  return store, inner, r.familiar, r.repository
end

-- For an index and --platform: the manifest of that platform.
local function pick_platform(store, m, platform, repo)
  local list = describe.platforms(m.parsed)
  for _, p in ipairs(list) do
    if p.platform == platform then
      local sub, msg, code = store:manifest((repo or "image") .. "@" .. p.digest)
      if not sub then return nil, msg, code end
      return sub
    end
  end
  local names = {}
  for _, p in ipairs(list) do names[#names + 1] = p.platform end
  return nil, string.format("the index has no platform %s (it has: %s)", platform, table.concat(names, ", ")),
    "NOT_FOUND"
end

local function run(argv)
  local o, err = args.parse(argv, spec)
  if not o then return regflags.usage(err, "inspect") end
  if not o[1] or o[2] then return regflags.usage("inspect takes one image reference", "inspect") end
  if o.raw and o.config then return regflags.usage("give --raw or --config, not both", "inspect") end
  local format
  format, err = regflags.format(o)
  if not format then return regflags.usage(err, "inspect") end
  if o.platform then
    local ok, perr = require("freightliner.clicheck").platform(o.platform)
    if not ok then return regflags.usage(perr, "inspect") end
  end

  local store, inner, name, repo = open(o[1], o)
  if not store then
    if name == "USAGE" then return regflags.usage(inner, "inspect") end
    return regflags.fail(inner, name)
  end
  local m, msg, code = store:manifest(inner)
  if not m then
    store:close()
    return regflags.fail(msg, code)
  end
  if not m.parsed then
    store:close()
    return regflags.fail(string.format("%s: the manifest is not JSON", name), "INVALID")
  end
  if o.platform and describe.is_index(m.parsed) then
    m, msg, code = pick_platform(store, m, o.platform, repo)
    if not m then
      store:close()
      return regflags.fail(msg, code)
    end
  elseif o.platform then
    store:close()
    return regflags.usage(string.format("%s is one image, not an index: --platform chooses an image of an index",
      name), "inspect")
  end
  if o.raw then
    io.stdout:write(m.data)
    store:close()
    return exitcode.OK
  end
  local info = describe.manifest(m, name)
  if describe.is_index(m.parsed) then
    if o.config then
      store:close()
      return regflags.usage(string.format("%s is an index of %d platforms; choose one with --platform",
        name, #info.platforms), "inspect")
    end
  else
    local cfg = m.parsed.config
    if cfg and cfg.digest then
      local blob
      blob, msg, code = store:blob(repo or "image", cfg.digest)
      if not blob then
        store:close()
        return regflags.fail(string.format("reading the config %s: %s", cfg.digest, msg), code)
      end
      if o.config then
        io.stdout:write(blob)
        store:close()
        return exitcode.OK
      end
      describe.add_config(info, blob)
    elseif o.config then
      store:close()
      return regflags.fail(string.format("%s has no config", name), "UNSUPPORTED")
    end
  end
  store:close()
  if format == "json" then
    io.stdout:write(assert(canonical.encode(describe.to_json(info))), "\n")
  else
    local escape = require("freightliner.printable").escape
    io.stdout:write((describe.text(info):gsub("[^\n]+", escape)))
  end
  return exitcode.OK
end

return {
  summary = "show an image's digest, platforms, layers, size and config",
  usage = usage,
  run = run,
}
