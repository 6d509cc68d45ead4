--- freightliner export --config FILE --to oci-archive:FILE: everything a
-- sync file selects, with its referrers, into one archive (air gaps).
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [[usage: freightliner export --config FILE --to oci-archive:ARCHIVE.tar
                         [--parallel N] [--dry-run] [--no-progress]

Copies every image the sync file's entries select (repositories, tag
rules, platforms, verify:) from their source registries into one OCI
archive, with their signatures, attestations and SBOMs, and a contents
manifest (freightliner-contents.json: each image's repository, tag, name
in the archive and digest). The destinations of the sync file are not
used: carry the archive to the other site and run 'freightliner import'.

The archive is written only when everything is in it: an interrupted or
partly failed export leaves ARCHIVE.tar.parts, and running the same
command again finishes it, copying only what is missing. Images refused by
verify: are left out (and reported).

exit status: 0 written, 1 some images failed, 2 usage or configuration
error, 130/143 interrupted (run it again to resume).]]

local spec = {
  { name = "config", value = true }, { name = "to", value = true },
  { name = "parallel", value = true, number = true, min = 1 },
  { name = "dry-run" }, { name = "no-progress" },
}

return {
  summary = "write what a sync file selects into one oci-archive (air gaps)",
  usage = usage,
  spec = spec,
  run = function(argv)
    local o, err = args.parse(argv, spec)
    if not o then return runner.usage_error(err, "export") end
    if not o.config or not o.to or o[1] then
      return runner.usage_error("export needs --config FILE and --to oci-archive:FILE", "export")
    end
    local config = require("freightliner.config")
    local plan, problems = config.load(o.config)
    if not plan then
      for _, p in ipairs(problems) do io.stderr:write(config.format_problem(o.config, p), "\n") end
      return 2
    end
    local job = config.job(plan, {
      dry_run = o["dry-run"] or false, parallel = o.parallel or plan.parallel,
      progress = not o["no-progress"],
    })
    for _, entry in ipairs(job.entries) do
      if entry.verify then
        local ok, msg = require("freightliner.verify").preflight(entry.verify)
        if not ok then return runner.usage_error(msg, "export") end
      end
    end
    return require("freightliner.airgap").export(job, o.to, {
      parallel = job.parallel, dry_run = job.dry_run, progress = job.progress,
    })
  end,
}
