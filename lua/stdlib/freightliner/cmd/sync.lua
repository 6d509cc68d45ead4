--- freightliner sync --config FILE: run a YAML sync file.
local exitcode = require("freightliner.exitcode")
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [==[usage: freightliner sync --config FILE [--dry-run [--format text|json]] [--parallel N]
                         [--checkpoint-file FILE] [--metrics-file FILE] [--force] [--strict] [--force-prune]
                         [--shard INDEX/COUNT | --shard-count COUNT]

Runs every entry of a YAML sync file: registries (host, TLS, credentials by
reference), and sync entries (source repository, pattern or regex;
destination prefix or template; tag rules; platforms; referrers; a Lua
policy). Check a file first with 'freightliner validate-config FILE'.
A tag rule that selects nothing is a warning; --strict makes it exit 1.
Entries with prune: true delete destination tags they no longer select,
at most prune_max per entry unless --force-prune (see README, "Prune").

options:
  --config FILE            the sync file
  --dry-run                print the plan on stdout, write nothing; it counts
                           errors and exits as the run would
  --format text|json       the form of the --dry-run plan
  --parallel N             images and blobs in flight (default: the file's
                           defaults.parallel, else 8; --parallel-workers is the same)
  --checkpoint-file FILE   record progress; 'freightliner resume FILE' finishes
  --metrics-file FILE      write the run's metrics as JSON at the end
  --force                  copy even images the destination already has
  --strict                 a pattern or tag rule that selects nothing is an
                           error (exit 1), not a warning
  --force-prune            prune past the prune_max guardrail
  --no-progress            no progress line on a terminal

]==] .. require("freightliner.exitcode").help()

local spec = {
  { name = "config", value = true }, { name = "dry-run" }, { name = "format", value = true },
  { name = "parallel", value = true, number = true, min = 1, max = 256,
    aliases = { "parallel-workers" } },
  { name = "checkpoint-file", value = true }, { name = "metrics-file", value = true },
  { name = "no-progress" }, { name = "force" }, { name = "strict" }, { name = "force-prune" },
}
for _, f in ipairs(require("freightliner.shard").flags) do spec[#spec + 1] = f end -- --shard ...

return {
  summary = "run a YAML sync file (registries, repositories, tag rules, policies)",
  usage = usage,
  spec = spec,
  run = function(argv)
    local o, err = args.parse(argv, spec)
    if not o then return runner.usage_error(err, "sync") end
    local shard
    shard, err = require("freightliner.shard").resolve(o)
    if err then return runner.usage_error(err, "sync") end
    if not o.config or o[1] then return runner.usage_error("sync needs --config FILE", "sync") end
    runner.check_options(o, "sync")
    local config = require("freightliner.config")
    local plan, problems = config.load(o.config)
    if not plan then
      local log = require("freightliner.log")
      for _, p in ipairs(problems) do
        if log.json() then
          log.log("error", p.message, nil, { file = o.config, line = p.line or 0, column = p.column or 0 })
        else
          io.stderr:write(config.format_problem(o.config, p), "\n")
        end
      end
      return exitcode.USAGE
    end
    if #plan.entries == 0 then
      return runner.usage_error(string.format("%s has no sync entries, so it would copy nothing", o.config), "sync")
    end
    local job = config.job(plan, {
      dry_run = o["dry-run"] or false, format = o.format, force = o.force or nil, strict = o.strict or nil,
      force_prune = o["force-prune"] or nil,
      parallel = o.parallel or plan.parallel, checkpoint_file = o["checkpoint-file"],
      metrics_file = o["metrics-file"], progress = not o["no-progress"],
    })
    job.shard = shard
    return runner.execute(job)
  end,
}
