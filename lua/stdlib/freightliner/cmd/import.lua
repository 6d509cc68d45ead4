--- freightliner import ARCHIVE --destination REGISTRY: push what
-- 'freightliner export' wrote, every digest checked.
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [[usage: freightliner import ARCHIVE.tar --destination REGISTRY
                         [--dest-prefix PREFIX] [--verify-key FILE]...
                         [--verify-require all] [--config FILE] [--dest-insecure]
                         [--parallel N] [--force] [--dry-run] [--no-progress]

Pushes every image listed in the archive's contents manifest (written by
'freightliner export') to REGISTRY/[PREFIX/]REPOSITORY:TAG, with its
signatures and other referrers. Each image is read by the digest the
manifest records, so the manifest is checked against it and every blob
against its own digest as it streams; nothing that does not match is
pushed. --verify-key also checks the cosign signatures in the archive
before an image is pushed. Running it again after an interruption skips
what the destination already has.

options:
  --destination REGISTRY     host[:port] to push to
  --dest-prefix PREFIX       destination repository = PREFIX/REPOSITORY
  --verify-key FILE          push only images signed by this public key
  --verify-require all       with several keys, need a signature by each
  --config FILE              registry settings (TLS, credentials) from a sync file
  --dest-insecure            plain HTTP to the destination

exit status: 0 all pushed, 1 some images failed, 2 usage or configuration
error, 130/143 interrupted (run it again to resume).]]

local spec = {
  { name = "destination", value = true }, { name = "dest-prefix", value = true },
  { name = "verify-key", value = true, multi = true }, { name = "verify-require", value = true },
  { name = "config", value = true }, { name = "dest-insecure" },
  { name = "parallel", value = true, number = true, min = 1 },
  { name = "force" }, { name = "dry-run" }, { name = "no-progress" },
}

return {
  summary = "push an archive written by 'export' to a registry, every digest checked",
  usage = usage,
  spec = spec,
  run = function(argv)
    local o, err = args.parse(argv, spec)
    if not o then return runner.usage_error(err, "import") end
    if not o[1] or o[2] or not o.destination then
      return runner.usage_error("import takes ARCHIVE and --destination REGISTRY", "import")
    end
    local registry = require("freightliner.registry")
    local ok, msg = registry.parse_spec(o.destination)
    if not ok or ok.kind ~= "registry" then
      return runner.usage_error(msg or ("--destination must be a registry host[:port], not " .. o.destination),
        "import")
    end
    local copy = require("freightliner.copy")
    if o.config then
      local job = {}
      if not runner.apply_config(job, o.config) then return 2 end
      for host, opts in pairs(job.registries) do copy.registry_options(host, opts) end
    end
    if o["dest-insecure"] then copy.registry_options(o.destination, { insecure = true }) end
    local verify = runner.verify_from_options(o)
    if o["verify-key"] or o["verify-require"] then
      local vok, vmsg = require("freightliner.verify").preflight(verify or { keys = {} })
      if not vok then return runner.usage_error(vmsg, "import") end
    end
    local archive = o[1]:gsub("^oci%-archive:", "")
    return require("freightliner.airgap").import(archive, o.destination, {
      dest_prefix = o["dest-prefix"], parallel = o.parallel or 8, progress = not o["no-progress"],
      dry_run = o["dry-run"], verify = verify, force = o.force,
    })
  end,
}
