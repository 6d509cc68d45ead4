--- freightliner replicate-tree SRC_PREFIX DST_PREFIX: every repository under a prefix.
local args = require("freightliner.args")
local runner = require("freightliner.runner")
local replicate_cmd = require("freightliner.cmd.replicate")

local usage = [[usage: freightliner replicate-tree SRC_PREFIX DST_PREFIX [OPTIONS]

Copies every repository under SRC_PREFIX (host[:port]/path) to the same
path under DST_PREFIX, e.g.
  freightliner replicate-tree src.example:5000/team mirror.example/backup/team
copies src.example:5000/team/app:* to mirror.example/backup/team/app:*.
Takes the options of 'freightliner replicate' (tag filters, platforms,
--parallel-workers, --checkpoint-file, --metrics-file, --dry-run, ...).]]

local function split(prefix)
  local host, path = prefix:match("^([^/]+)/?(.*)$")
  return host, (path ~= "" and path or nil)
end

return {
  summary = "copy every repository under a prefix to another registry",
  usage = usage,
  run = function(argv)
    local o, err = args.parse(argv, replicate_cmd.spec)
    if not o then return runner.usage_error(err, "replicate-tree") end
    o.shard, err = require("freightliner.shard").resolve(o)
    if err then return runner.usage_error(err, "replicate-tree") end
    if not o[1] or not o[2] or o[3] then
      return runner.usage_error("replicate-tree takes SRC_PREFIX DST_PREFIX", "replicate-tree")
    end
    local src_host, src_path = split(o[1])
    local dst_host, dst_path = split(o[2])
    o.source, o.destination = src_host, dst_host
    o["repository-pattern"] = src_path and (src_path .. "/*") or "*"
    local job = runner.job_from_options(o)
    local entry = job.entries[1]
    -- destination: DST_PATH + the part of the repository below SRC_PATH
    if src_path then
      entry.dest_template = nil
      entry.rename_prefix = { from = src_path, to = dst_path }
    elseif dst_path then
      entry.dest_prefix = dst_path
    end
    if o.config and not runner.apply_config(job, o.config) then return 2 end
    return runner.execute(job)
  end,
}
