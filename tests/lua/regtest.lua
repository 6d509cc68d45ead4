--- regtest: real Distribution registries for the busted specs.
--
-- Starts Debian's docker-registry on loopback through the e2e harness
-- (e2e/harness/registry.py) in a temp directory, seeds it with generated
-- images (e2e/harness/seed.py), and stops it afterwards.
local json = require("cjson")

local M = {}

local root = os.getenv("FREIGHTLINER_ROOT") or "."

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  return ok, out, status
end
M.sh = sh

local function tmpdir()
  local ok, out = sh("mktemp -d /tmp/fl-test-XXXXXX")
  assert(ok, out)
  return (out:gsub("%s+$", ""))
end
M.tmpdir = tmpdir

--- Start a registry. mode: plain|htpasswd|tls|mtls|token. extra: CLI flags.
function M.start(mode, extra)
  local dir = tmpdir()
  local ok, out = sh(string.format("python3 %s/e2e/harness/registry.py start --mode %s --dir %s %s",
    root, mode, dir, extra or ""))
  if not ok then error("starting a " .. mode .. " registry failed:\n" .. out) end
  local line = out:match("(%b{})%s*$")
  local info = assert(json.decode(line), out)
  for k, v in pairs(info) do
    if v == json.null then info[k] = nil end
  end
  info.dir = dir
  return info
end

function M.stop(info)
  if not info then return end
  sh(string.format("python3 %s/e2e/harness/registry.py stop --dir %s", root, info.dir))
  sh("rm -rf " .. info.dir)
end

--- Seed a registry with a preset (small, fleet, big). Returns the summary.
function M.seed(info, preset, extra)
  local auth = ""
  if info.username then
    auth = string.format("--user %s --password %s", info.username, info.password)
  end
  local ca = info.ca and ("--ca " .. info.ca) or ""
  local cert = info.client_cert and string.format("--cert %s --key %s", info.client_cert, info.client_key) or ""
  local ok, out = sh(string.format("python3 %s/e2e/harness/seed.py --registry %s %s %s %s --spec %s %s",
    root, info.url, auth, ca, cert, preset, extra or ""))
  if not ok then error("seeding failed:\n" .. out) end
  return json.decode(out:match("(%b{})%s*$") or out:match("(%b[])%s*$"))
end

return M
