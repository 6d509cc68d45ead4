-- Writing to a read-only file system, the way a user meets one: the real
-- binary replicates an image into an OCI layout on a tmpfs mounted
-- read-only (in its own mount namespace: `unshare -rm`), and the error says
-- so in words, the image counts as failed (status 1), and what was there
-- before is untouched. Skipped where the kernel allows no namespace.
local fl = require("freightliner")
local h = require("helpers")

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true
end

local can_unshare = sh("unshare -rm true 2>/dev/null")

-- A one-layer image in a fresh OCI layout at dir, tagged v1.
local function make_source(dir)
  local reg = assert(fl.registry("oci:" .. dir, { create = true }))
  local layer = "layer " .. tostring(os.time())
  local ld = assert(reg:put_blob("image", layer))
  local cd = assert(reg:put_blob("image", "{}"))
  assert(reg:put_manifest("image:v1", string.format(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
      .. '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},'
      .. '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}',
    cd, ld, #layer)))
  reg:close()
end

-- Run script (sh) in a private mount namespace; returns its stdout.
local function in_namespace(script)
  local out = os.tmpname()
  sh(string.format("unshare -rm sh -c %s >%s 2>&1", h.shell_quote(script), out))
  local text = h.slurp(out)
  os.remove(out)
  return text
end

local describe_or_skip = can_unshare and describe or pending

-- The binary by absolute path (the namespace's shell runs it from anywhere).
local function binary()
  local bin = h.bin:sub(1, 1) == "/" and h.bin or (h.root .. "/" .. h.bin)
  return h.shell_quote(bin)
end

describe_or_skip("a read-only file system", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. dir .. "/ro"))
    make_source(dir .. "/src")
  end)
  after_each(function() sh("rm -rf " .. h.shell_quote(dir)) end)

  it("fails the image with a message that names it, when the layout cannot be created", function()
    local bin = binary()
    local out = in_namespace(string.format(
      "mount -t tmpfs -o ro,size=1m tmpfs %s/ro && %s replicate oci:%s/src:v1 oci:%s/ro/layout:v1; echo status=$?",
      dir, bin, dir, dir))
    assert.matches("status=1", out, 1, true)
    assert.matches("cannot create directory " .. dir .. "/ro/layout: Read-only file system "
      .. "(the file system is mounted read-only: use a directory on a writable one) (IO)", out, 1, true)
    assert.matches("1 failed", out, 1, true)
  end)

  it("leaves an existing layout whole when it turns read-only", function()
    local bin = binary()
    local out = in_namespace(string.format([[
set -e
mount -t tmpfs -o size=4m tmpfs %s/ro
%s replicate oci:%s/src:v1 oci:%s/ro/layout:v1 >/dev/null
cp %s/ro/layout/index.json %s/before.json
mount -o remount,ro %s/ro
set +e
%s replicate oci:%s/src:v1 oci:%s/ro/layout:v2
echo status=$?
cmp -s %s/ro/layout/index.json %s/before.json && echo index=unchanged
ls -A %s/ro/layout | tr '\n' ' '; echo
]], dir, bin, dir, dir, dir, dir, dir, bin, dir, dir, dir, dir, dir))
    assert.matches("status=1", out, 1, true)
    assert.matches("writing " .. dir .. "/ro/layout/index.json: cannot create a temporary file in "
      .. dir .. "/ro/layout: Read-only file system (the file system is mounted read-only", out, 1, true)
    assert.matches("index=unchanged", out, 1, true)
    assert.is_nil(out:find(".tmp-", 1, true), out)
  end)
end)
