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
  --verify-key FILE          copy only images with a cosign signature by this
                             public key (PEM; repeatable: any key suffices)
  --verify-require all       with several keys, need a signature by each
  --parallel-workers N       images and blobs in flight (default 8)
  --checkpoint-file FILE     record progress; 'freightliner resume' finishes
  --metrics-file FILE        write counters as JSON at the end
  --config FILE              registry settings (TLS, credentials) from a sync file
  --src-insecure, --dest-insecure   plain HTTP to the source / destination
  --dry-run                  print the plan, write nothing (--format json)
  --no-progress              no progress line on a terminal

exit status: 0 all done, 1 some images failed, 2 usage or configuration
error, 130/143 interrupted (resumable with the checkpoint).]]

local spec = {
  { name = "source", value = true }, { name = "destination", value = true },
  { name = "repository", value = true, multi = true },
  { name = "repository-pattern", value = true },
  { name = "tag-filter", value = true, multi = true },
  { name = "exclude-tag", value = true, multi = true },
  { name = "dest-prefix", value = true },
  { name = "platform", value = true, multi = true },
  { name = "referrers" }, { name = "force" },
  { name = "verify-key", value = true, multi = true }, { name = "verify-require", value = true },
  { name = "parallel-workers", value = true, number = true, min = 1 },
  { name = "checkpoint-file", value = true },
  { name = "metrics-file", value = true },
  { name = "config", value = true },
  { name = "src-insecure" }, { name = "dest-insecure" },
  { name = "dry-run" }, { name = "format", value = true },
  { name = "no-progress" },
}

return {
  summary = "copy an image, or repositories, from one registry to another",
  usage = usage,
  spec = spec,
  run = function(argv)
    local opts, err = args.parse(argv, spec)
    if not opts then return runner.usage_error(err, "replicate") end
    return runner.replicate(opts)
  end,
}
