--- freightliner sync --config FILE: run a YAML sync file.
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [[usage: freightliner sync --config FILE [--dry-run] [--parallel N]
                         [--checkpoint-file FILE] [--metrics-file FILE] [--strict] [--force-prune]

Runs every entry of a YAML sync file: registries (host, TLS, credentials by
reference), and sync entries (source repository, pattern or regex;
destination prefix or template; tag rules; platforms; referrers; a Lua
policy). Check a file first with 'freightliner validate-config FILE'.
A tag rule that selects nothing is a warning; --strict makes it exit 1.
Entries with prune: true delete destination tags they no longer select,
at most prune_max per entry unless --force-prune (see README, "Prune").

exit status: 0 all done, 1 some images failed, 2 usage or configuration
error, 130/143 interrupted (resumable with the checkpoint).]]

local spec = {
  { name = "config", value = true }, { name = "dry-run" }, { name = "format", value = true },
  { name = "parallel", value = true, number = true, min = 1 },
  { name = "checkpoint-file", value = true }, { name = "metrics-file", value = true },
  { name = "no-progress" }, { name = "force" }, { name = "strict" }, { name = "force-prune" },
}

return {
  summary = "run a YAML sync file (registries, repositories, tag rules, policies)",
  usage = usage,
  run = function(argv)
    local o, err = args.parse(argv, spec)
    if not o then return runner.usage_error(err, "sync") end
    if not o.config or o[1] then return runner.usage_error("sync needs --config FILE", "sync") end
    local config = require("freightliner.config")
    local plan, problems = config.load(o.config)
    if not plan then
      for _, p in ipairs(problems) do io.stderr:write(config.format_problem(o.config, p), "\n") end
      return 2
    end
    local job = config.job(plan, {
      dry_run = o["dry-run"] or false, format = o.format, force = o.force or nil, strict = o.strict or nil,
      force_prune = o["force-prune"] or nil,
      parallel = o.parallel or plan.parallel, checkpoint_file = o["checkpoint-file"],
      metrics_file = o["metrics-file"], progress = not o["no-progress"],
    })
    return runner.execute(job)
  end,
}
