--- freightliner: the Lua API (`local fl = require "freightliner"`).
--
-- The C core (freightliner.core) is the mechanism: digests, registry HTTP,
-- the transfer engine. This module is the policy-facing surface on top of
-- it; the CLI (freightliner.cli) is built only from what is exported here,
-- so anything the CLI does a script can do too.

local core = require("freightliner.core")

local M = {
  VERSION = "0.1.0",
}

if core.version ~= M.VERSION then
  error(string.format(
    "freightliner: the Lua stdlib is version %s but the C core is %s; "
      .. "rebuild (make build) or point --lua-dir at the matching stdlib",
    M.VERSION, tostring(core.version)), 0)
end

M.core = core
M.digest = core.digest

--- Image references: fl.ref.parse("alpine") -> { domain = "docker.io",
-- repository = "library/alpine", tag = "latest", ... } | nil, msg, CODE.
M.ref = core.ref

--- fnmatch(3) glob match: fl.glob("v1.*", "v1.2") -> true.
M.glob = core.glob

--- PCRE2 regular expressions: fl.regex.compile("^v\\d+$"):match("v1").
M.regex = core.regex

local registry = require("freightliner.registry")

--- Open a registry ("host[:port]", "http://host", "oci:PATH"); see
-- freightliner.registry for the methods.
function M.registry(spec, opts)
  return registry.open(spec, opts)
end

--- Versions of Freightliner and the libraries it runs on.
function M.versions()
  return core.versions()
end

local copy = require("freightliner.copy")

--- Copy one image: fl.copy(src, dst, opts); see freightliner.copy.
M.copy = copy.copy
M.submit = copy.submit
M.cancel = copy.cancel
M.spawn = copy.spawn
M.wait = copy.wait
M.parallel = copy.parallel
M.counters = copy.counters
M.configure = copy.configure
M.registry_options = copy.registry_options
--- The registry object fl.copy uses for a store (its stats, its tokens).
M.endpoint = copy.endpoint
M.sleep = copy.sleep
--- Write the oci-archive:/docker-archive: files copies went into.
M.finish_archives = copy.finish_archives

--- Signatures: fl.verify(ref, {keys = {"cosign.pub"}, require = "any"|"all"})
-- -> result | nil, message, "UNVERIFIED"; see freightliner.verify.
M.verify = require("freightliner.verify").verify

--- Many images: fl.replicate.plan{...} lists them from a catalog with
-- filters, fl.replicate.run(plan, opts) copies them (see
-- freightliner.replicate).
M.replicate = require("freightliner.replicate")

--- JSON (core.json on jansson, built in; integers kept as integers).
M.json = require("freightliner.json")

return M
