--- freightliner replicate: copy one image, or repositories between registries.
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [[usage: freightliner replicate SRC_IMAGE DST_IMAGE [OPTIONS]
       freightliner replicate --source REGISTRY --destination REGISTRY
              (--repository REPO | --repository-pattern GLOB) [OPTIONS]

Copies images with everything they reference (blobs streamed and verified,
manifests pushed only after their blobs). Images are registry references
(host[:port]/repo:tag, docker://...) or OCI layouts (oci:PATH:TAG).
Registries are host[:port]; loopback hosts may use plain HTTP.

options:
  --repository REPO          a source repository (repeatable)
  --repository-pattern GLOB  repositories of the source catalog, e.g. 'team/*'
  --tag-filter GLOB          copy tags matching GLOB (repeatable; default all)
  --exclude-tag GLOB         skip tags matching GLOB (repeatable)
  --dest-prefix PREFIX       destination repository = PREFIX/REPO
  --platform OS/ARCH[/VAR]   copy only these platforms of an index (repeatable)
  --referrers                also copy signatures, attestations and SBOMs
  --force                    copy even if the destination is up to date
  --parallel N               images and blobs in flight (default 8;
                             --parallel-workers is the same)
  --prune                    delete destination tags the rules no longer select
                             (at most max(10%, 20) unless --force-prune)
  --force-prune              prune past that guardrail
  --verify-key FILE          copy only images with a cosign signature by this
                             public key (PEM; repeatable: any key suffices)
  --verify-require all       with several keys, need a signature by each
  --checkpoint-file FILE     record progress; 'freightliner resume' finishes
  --metrics-file FILE        write counters as JSON at the end
  --config FILE              registry settings (TLS, credentials) from a sync file
  --src-insecure, --dest-insecure   plain HTTP to the source / destination
  --dry-run                  print the plan on stdout, write nothing; it
                             counts errors and exits as the run would
  --format text|json         the form of the --dry-run plan
  --strict                   a pattern or tag rule that selects nothing is an
                             error (exit 1), not a warning
  --shard INDEX/COUNT        copy only shard INDEX (0-based) of COUNT (also
                             FREIGHTLINER_SHARD; --shard-count COUNT takes
                             INDEX from JOB_COMPLETION_INDEX); repositories
                             over --shard-split-tags N (500) split by tag
  --no-progress              no progress line on a terminal

SRC_IMAGE DST_IMAGE copies one image: the options that choose
repositories and tags (--repository*, --tag-filter, --exclude-tag,
--dest-prefix, --checkpoint-file, --strict) do not apply to it.
A registry may be written http://host[:port] or https://host[:port] to
choose the protocol, in images too (http://127.0.0.1:5000/team/app:v1).
Progress: one log line per image done or failed (stderr), and a summary.

]] .. require("freightliner.exitcode").help()

local spec = {
  { name = "source", value = true }, { name = "destination", value = true },
  { name = "repository", value = true, multi = true },
  { name = "repository-pattern", value = true },
  { name = "tag-filter", value = true, multi = true },
  { name = "exclude-tag", value = true, multi = true },
  { name = "dest-prefix", value = true },
  { name = "platform", value = true, multi = true },
  { name = "referrers" }, { name = "force" }, { name = "prune" }, { name = "force-prune" },
  { name = "verify-key", value = true, multi = true }, { name = "verify-require", value = true },
  { name = "parallel", value = true, number = true, min = 1, max = 256,
    aliases = { "parallel-workers" } },
  { name = "checkpoint-file", value = true },
  { name = "metrics-file", value = true },
  { name = "config", value = true },
  { name = "src-insecure" }, { name = "dest-insecure" },
  { name = "dry-run" }, { name = "format", value = true },
  { name = "no-progress" }, { name = "strict" },
}
for _, f in ipairs(require("freightliner.shard").flags) do spec[#spec + 1] = f end -- --shard ...

return {
  summary = "copy an image, or repositories, from one registry to another",
  usage = usage,
  spec = spec,
  run = function(argv)
    local opts, err = args.parse(argv, spec)
    if not opts then return runner.usage_error(err, "replicate") end
    opts.shard, err = require("freightliner.shard").resolve(opts)
    if err then return runner.usage_error(err, "replicate") end
    return runner.replicate(opts)
  end,
}
