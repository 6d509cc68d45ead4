--- freightliner.regflags: the registry options shared by the read-only
-- commands (inspect, list-tags, catalog): the option specs, their help
-- text, turning parsed options into fl.registry options, and the one way
-- those commands report a failure.
--
--   regflags.spec            option specs for freightliner.args
--   regflags.HELP            the help lines
--   regflags.options(opts)   -> options for fl.registry
--   regflags.fail(msg, code) -> prints "freightliner: msg (CODE)", returns 1
--   regflags.usage(msg, cmd) -> prints the usage hint, returns 2
local exitcode = require("freightliner.exitcode")

local M = {}

M.spec = {
  { name = "insecure" },
  { name = "ca-file", value = true },
  { name = "username", value = true },
  { name = "password-env", value = true },
  { name = "format", value = true },
}

M.HELP = [[
  --insecure             plain HTTP (loopback hosts may use it anyway)
  --ca-file FILE         trust this CA (PEM) for TLS
  --username USER        log in as USER ...
  --password-env VAR     ... with the password from environment variable VAR
  --format json          print JSON instead of text]]

--- Extend a spec list with the shared options.
function M.with(spec)
  local out = {}
  for _, o in ipairs(spec) do out[#out + 1] = o end
  for _, o in ipairs(M.spec) do out[#out + 1] = o end
  return out
end

function M.options(o)
  return {
    insecure = o.insecure or nil,
    ca_file = o["ca-file"],
    username = o.username,
    password_env = o["password-env"],
    create = false,
  }
end

--- Check --format; returns "text" | "json" or nil, message.
function M.format(o)
  local f = o.format or "text"
  if f ~= "text" and f ~= "json" then
    return nil, string.format("unknown format '%s' (expected text or json)", f)
  end
  return f
end

-- A message on stderr: "freightliner: ..." (control characters escaped),
-- or one JSON log line under --log-format json.
local function say(msg, code)
  local log = require("freightliner.log")
  if log.json() then
    log.log("error", msg, nil, code and { code = code } or nil)
  else
    io.stderr:write("freightliner: ", require("freightliner.printable").escape(msg),
      code and (" (" .. code .. ")") or "", "\n")
  end
end

function M.fail(msg, code)
  say(tostring(msg), code)
  return exitcode.FAILED
end

function M.usage(msg, cmd)
  say(string.format("%s; see 'freightliner help %s'", msg, cmd))
  return exitcode.USAGE
end

return M
