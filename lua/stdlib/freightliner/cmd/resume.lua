--- freightliner resume --checkpoint-file FILE: finish an interrupted run.
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [[usage: freightliner resume --checkpoint-file FILE [--config FILE] [--parallel-workers N]

Finishes the run recorded in FILE by 'replicate', 'replicate-tree' or
'sync' with --checkpoint-file: images already done are skipped; images
that failed or were in flight are copied again. The checkpoint holds the
run's plan; --config supplies registry settings (TLS, credentials) again
when the run used them. A truncated, corrupted or foreign checkpoint is
refused (exit 2) and left as it is.]]

local spec = {
  { name = "checkpoint-file", value = true }, { name = "config", value = true },
  { name = "parallel-workers", value = true, number = true, min = 1 },
  { name = "metrics-file", value = true }, { name = "no-progress" },
}

return {
  summary = "finish an interrupted run from its checkpoint",
  usage = usage,
  run = function(argv)
    local o, err = args.parse(argv, spec)
    if not o then return runner.usage_error(err, "resume") end
    local path = o["checkpoint-file"]
    if not path or o[1] then return runner.usage_error("resume needs --checkpoint-file FILE", "resume") end
    local checkpoint = require("freightliner.checkpoint")
    local cp, msg = checkpoint.load(path)
    if not cp then
      io.stderr:write("freightliner: ", msg, "\n")
      return 2
    end
    local job = cp.plan
    if type(job) ~= "table" or type(job.entries) ~= "table" then
      io.stderr:write("freightliner: checkpoint ", path, " has no plan to resume\n")
      return 2
    end
    if o.config and not runner.apply_config(job, o.config) then return 2 end
    job.parallel = o["parallel-workers"] or job.parallel
    job.metrics_file = o["metrics-file"] or job.metrics_file
    job.progress = not o["no-progress"]
    job.dry_run = false
    local counts = cp:counts()
    io.stderr:write(string.format("freightliner: resuming %s: %d done, %d to do\n", path,
      counts.done or 0, (counts.pending or 0) + (counts.in_progress or 0) + (counts.failed or 0)))
    return runner.execute(job, cp)
  end,
}
