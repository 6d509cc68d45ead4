--- freightliner resume --checkpoint-file FILE: finish an interrupted run.
local exitcode = require("freightliner.exitcode")
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [[usage: freightliner resume FILE [--config FILE] [--parallel N] [--metrics-file FILE]
       freightliner resume --checkpoint-file FILE ...

Finishes the run recorded in FILE by 'replicate', 'replicate-tree' or
'sync' with --checkpoint-file: images already done are skipped; images
that failed or were in flight are copied again. The checkpoint holds the
run's plan; --config supplies registry settings (TLS, credentials) again
when the run used them. A truncated, corrupted or foreign checkpoint is
refused (exit 2) and left as it is. The resumed run keeps the run id of
the interrupted one, and its metrics file (the run's --metrics-file, or
--metrics-file here) adds up both parts.

]] .. require("freightliner.exitcode").help()

local spec = {
  { name = "checkpoint-file", value = true }, { name = "config", value = true },
  { name = "parallel", value = true, number = true, min = 1, max = 256,
    aliases = { "parallel-workers" } },
  { name = "metrics-file", value = true }, { name = "no-progress" },
}

return {
  summary = "finish an interrupted run from its checkpoint",
  usage = usage,
  spec = spec,
  run = function(argv)
    local o, err = args.parse(argv, spec)
    if not o then return runner.usage_error(err, "resume") end
    local path = o["checkpoint-file"] or o[1]
    if not path or o[2] or (o[1] and o["checkpoint-file"]) then
      return runner.usage_error("resume takes one checkpoint: resume FILE (or --checkpoint-file FILE)", "resume")
    end
    local wok, werr = require("freightliner.clicheck").writable(o["metrics-file"])
    if not wok then return runner.usage_error("--metrics-file: " .. werr, "resume") end
    local checkpoint = require("freightliner.checkpoint")
    local cp, msg = checkpoint.load(path)
    if not cp then
      runner.stderr("%s", msg)
      return exitcode.USAGE
    end
    local job = cp.plan
    if type(job) ~= "table" or type(job.entries) ~= "table" then
      runner.stderr("checkpoint %s has no plan to resume", path)
      return exitcode.USAGE
    end
    if o.config and not runner.apply_config(job, o.config) then return exitcode.USAGE end
    job.parallel = o.parallel or job.parallel
    job.metrics_file = o["metrics-file"] or job.metrics_file
    job.progress = not o["no-progress"]
    job.dry_run = false
    job.resumed = true
    if type(cp.run_id) == "string" and cp.run_id ~= "" then
      require("freightliner.log").configure{ run_id = cp.run_id }
      job.run_id = cp.run_id
    end
    local counts = cp:counts()
    local log = require("freightliner.log")
    local line = string.format("resuming %s: %d done, %d to do", path,
      counts.done or 0, (counts.pending or 0) + (counts.in_progress or 0) + (counts.failed or 0))
    if log.json() then log.log("info", line) else io.stderr:write("freightliner: ", line, "\n") end
    return runner.execute(job, cp)
  end,
}
