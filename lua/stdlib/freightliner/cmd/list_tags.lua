--- freightliner list-tags REPO: the tags of a repository.
local exitcode = require("freightliner.exitcode")
local args = require("freightliner.args")
local regflags = require("freightliner.regflags")
local canonical = require("freightliner.canonical")
local fl = require("freightliner")

local usage = [[usage: freightliner list-tags REPO [--format json] [registry options]

Lists the tags of REPO, sorted, one per line (control characters in a tag
are shown escaped, as \e or \x07; --format json has them as JSON escapes).
REPO is a repository with its registry (127.0.0.1:5000/team/app,
http://host:5000/team/app for plain HTTP) or an OCI layout (oci:PATH).

options:
]] .. regflags.HELP .. [[


exit status: 0 ok, 1 the registry failed, 2 usage error.]]

local spec = regflags.with({})

local function run(argv)
  local o, err = args.parse(argv, spec)
  if not o then return regflags.usage(err, "list-tags") end
  if not o[1] or o[2] then return regflags.usage("list-tags takes one repository", "list-tags") end
  local format
  format, err = regflags.format(o)
  if not format then return regflags.usage(err, "list-tags") end
  local store, repo, name, msg, code
  if o[1]:match("^oci:") then
    store, msg, code = fl.registry(o[1], { create = false })
    repo, name = "image", o[1]
  else
    local r
    r, msg = require("freightliner.clicheck").repository(o[1])
    if not r then return regflags.usage(msg, "list-tags") end
    store, msg, code = fl.registry(r.store, regflags.options(o))
    repo, name = r.repository, r.name
  end
  if not store then return regflags.fail(msg, code) end
  local tags
  tags, msg, code = store:tags(repo)
  store:close()
  if not tags then return regflags.fail(msg, code) end
  table.sort(tags)
  if format == "json" then
    io.stdout:write(assert(canonical.encode({ repository = name, tags = canonical.array(tags) })), "\n")
  else
    local escape = require("freightliner.printable").escape
    for _, t in ipairs(tags) do io.stdout:write(escape(t), "\n") end
  end
  return exitcode.OK
end

return {
  summary = "list the tags of a repository",
  usage = usage,
  run = run,
}
