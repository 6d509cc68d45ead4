--- freightliner replicate-tree SRC_PREFIX DST_PREFIX: every repository under a prefix.
local exitcode = require("freightliner.exitcode")
local args = require("freightliner.args")
local runner = require("freightliner.runner")
local replicate_cmd = require("freightliner.cmd.replicate")

local usage = [[usage: freightliner replicate-tree SRC_PREFIX DST_PREFIX [OPTIONS]

Copies every repository under SRC_PREFIX (host[:port]/path) to the same
path under DST_PREFIX, e.g.
  freightliner replicate-tree src.example:5000/team mirror.example/backup/team
copies src.example:5000/team/app:* to mirror.example/backup/team/app:*.
Takes the options of 'freightliner replicate' (tag filters, platforms,
--parallel, --checkpoint-file, --metrics-file, --dry-run, --strict, ...).
A prefix with no repository under it is a warning (an error, exit 1,
under --strict).

]] .. require("freightliner.exitcode").help()

-- "host[:port]/path" (or http://..., https://...) -> registry spec, path
local function split(prefix)
  local scheme, rest = prefix:match("^(https?://)(.*)$")
  local host, path = (rest or prefix):match("^([^/]+)/?(.*)$")
  if not host then return prefix, nil end
  return (scheme or "") .. host, (path ~= "" and path:gsub("/+$", "") or nil)
end

return {
  summary = "copy every repository under a prefix to another registry",
  usage = usage,
  spec = replicate_cmd.spec,
  run = function(argv)
    local o, err = args.parse(argv, replicate_cmd.spec)
    if not o then return runner.usage_error(err, "replicate-tree") end
    o.shard, err = require("freightliner.shard").resolve(o)
    if err then return runner.usage_error(err, "replicate-tree") end
    if not o[1] or not o[2] or o[3] then
      return runner.usage_error("replicate-tree takes SRC_PREFIX DST_PREFIX", "replicate-tree")
    end
    for _, f in ipairs({ "source", "destination", "repository", "repository-pattern", "dest-prefix" }) do
      if o[f] ~= nil then
        return runner.usage_error(string.format("--%s does not apply to replicate-tree (SRC_PREFIX and "
          .. "DST_PREFIX say what to copy and where)", f), "replicate-tree")
      end
    end
    runner.check_options(o, "replicate-tree")
    local src_host, src_path = split(o[1])
    local dst_host, dst_path = split(o[2])
    o.source, o.destination = src_host, dst_host
    o["repository-pattern"] = src_path and (src_path .. "/*") or "*"
    for _, spec in ipairs({ src_host, dst_host }) do
      local ok, msg = require("freightliner.registry").parse_spec(spec)
      if not ok then return runner.usage_error(msg, "replicate-tree") end
    end
    local job = runner.job_from_options(o)
    local entry = job.entries[1]
    entry.tree_prefix = src_path
    -- destination: DST_PATH + the part of the repository below SRC_PATH
    if src_path then
      entry.dest_template = nil
      entry.rename_prefix = { from = src_path, to = dst_path }
    elseif dst_path then
      entry.dest_prefix = dst_path
    end
    if o.config and not runner.apply_config(job, o.config) then return exitcode.USAGE end
    return runner.execute(job)
  end,
}
