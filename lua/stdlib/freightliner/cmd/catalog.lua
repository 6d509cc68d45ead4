--- freightliner catalog REGISTRY: the repositories of a registry.
local exitcode = require("freightliner.exitcode")
local args = require("freightliner.args")
local regflags = require("freightliner.regflags")
local canonical = require("freightliner.canonical")
local fl = require("freightliner")

local usage = [[usage: freightliner catalog REGISTRY [--pattern GLOB] [--format json] [registry options]

Lists the repositories of REGISTRY (host[:port]) from its catalog API,
sorted, one per line; --pattern keeps those matching a glob ('team/*').

options:
  --pattern GLOB         only repositories matching GLOB
]] .. regflags.HELP .. [[


exit status: 0 ok, 1 the registry failed, 2 usage error.]]

local spec = regflags.with({ { name = "pattern", value = true } })

local function run(argv)
  local o, err = args.parse(argv, spec)
  if not o then return regflags.usage(err, "catalog") end
  if not o[1] or o[2] then return regflags.usage("catalog takes one registry (host[:port])", "catalog") end
  local format
  format, err = regflags.format(o)
  if not format then return regflags.usage(err, "catalog") end
  local registry = require("freightliner.registry")
  local ok, msg = registry.parse_spec(o[1])
  if not ok then return regflags.usage(msg, "catalog") end
  local store, code
  store, msg, code = fl.registry(o[1], regflags.options(o))
  if not store then return regflags.fail(msg, code) end
  local repos
  repos, msg, code = store:catalog({ pattern = o.pattern })
  store:close()
  if not repos then return regflags.fail(msg, code) end
  table.sort(repos)
  if format == "json" then
    io.stdout:write(assert(canonical.encode({ registry = o[1], repositories = canonical.array(repos) })), "\n")
  else
    local escape = require("freightliner.printable").escape
    for _, r in ipairs(repos) do io.stdout:write(escape(r), "\n") end
  end
  return exitcode.OK
end

return {
  summary = "list the repositories of a registry",
  usage = usage,
  run = run,
}
