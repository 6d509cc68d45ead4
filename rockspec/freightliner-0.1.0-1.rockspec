-- LuaRocks spec for the Freightliner Lua module: require("freightliner")
-- in a stock Lua 5.4 gets the stdlib, and require("freightliner.core") the
-- C core. Built with CMake (the freightliner_module target, core.so; the
-- other targets come along); `luarocks make` from the source tree works.
--
-- Every lua/stdlib module must be listed in build.install.lua: rockspecs
-- cannot glob. `make check` (the rockspec gate) fails when the list and
-- lua/stdlib/ disagree.
rockspec_format = "3.0"
package = "freightliner"
version = "0.1.0-1"

source = {
  url = "git+https://github.com/freightliner/freightliner.git",
  tag = "v0.1.0",
}

description = {
  summary = "Container image replicator: C11 core with an embedded Lua 5.4 stdlib",
  detailed = [[
Copies container images between OCI/Docker registries and OCI layouts,
streaming blobs with digest checks. The C core (libcurl, OpenSSL, jansson,
libyaml, PCRE2) is exposed to Lua as freightliner.core; the stdlib (freightliner.*)
provides the CLI commands, policies and replication planning.
]],
  license = "Apache-2.0",
  homepage = "https://github.com/freightliner/freightliner",
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

external_dependencies = {
  -- Debian keeps curl.h under the multiarch include dir: look for the library.
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/evp.h" },
  JANSSON = { header = "jansson.h" },
  YAML = { header = "yaml.h" },
  PCRE2 = { header = "pcre2.h" },
  ZLIB = { header = "zlib.h" },
  MICROHTTPD = { header = "microhttpd.h" },
}

build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    FL_TESTS = "OFF",
  },
  -- LuaRocks copies the files itself (the list below); `make install` puts
  -- the same files in the same layout under PREFIX.
  install_pass = false,
  install = {
    lib = {
      ["freightliner.core"] = "build.luarocks/lua/freightliner/core.so",
    },
    lua = {
      ["freightliner.args"]                    = "lua/stdlib/freightliner/args.lua",
      ["freightliner.airgap"]                  = "lua/stdlib/freightliner/airgap.lua",
      ["freightliner.archive"]                 = "lua/stdlib/freightliner/archive.lua",
      ["freightliner.budget"]                  = "lua/stdlib/freightliner/budget.lua",
      ["freightliner.canonical"]               = "lua/stdlib/freightliner/canonical.lua",
      ["freightliner.checkpoint"]              = "lua/stdlib/freightliner/checkpoint.lua",
      ["freightliner.cli"]                     = "lua/stdlib/freightliner/cli.lua",
      ["freightliner.cmd.catalog"]             = "lua/stdlib/freightliner/cmd/catalog.lua",
      ["freightliner.cmd.eval"]                = "lua/stdlib/freightliner/cmd/eval.lua",
      ["freightliner.cmd.export"]              = "lua/stdlib/freightliner/cmd/export.lua",
      ["freightliner.cmd.help"]                = "lua/stdlib/freightliner/cmd/help.lua",
      ["freightliner.cmd.import"]              = "lua/stdlib/freightliner/cmd/import.lua",
      ["freightliner.cmd.inspect"]             = "lua/stdlib/freightliner/cmd/inspect.lua",
      ["freightliner.cmd.list_tags"]           = "lua/stdlib/freightliner/cmd/list_tags.lua",
      ["freightliner.cmd.repl"]                = "lua/stdlib/freightliner/cmd/repl.lua",
      ["freightliner.cmd.replicate"]           = "lua/stdlib/freightliner/cmd/replicate.lua",
      ["freightliner.cmd.replicate_tree"]      = "lua/stdlib/freightliner/cmd/replicate_tree.lua",
      ["freightliner.cmd.resume"]              = "lua/stdlib/freightliner/cmd/resume.lua",
      ["freightliner.cmd.run"]                 = "lua/stdlib/freightliner/cmd/run.lua",
      ["freightliner.cmd.serve"]               = "lua/stdlib/freightliner/cmd/serve.lua",
      ["freightliner.cmd.sync"]                = "lua/stdlib/freightliner/cmd/sync.lua",
      ["freightliner.cmd.validate_config"]     = "lua/stdlib/freightliner/cmd/validate_config.lua",
      ["freightliner.cmd.version"]             = "lua/stdlib/freightliner/cmd/version.lua",
      ["freightliner.config"]                  = "lua/stdlib/freightliner/config.lua",
      ["freightliner.copy"]                    = "lua/stdlib/freightliner/copy.lua",
      ["freightliner.describe"]                = "lua/stdlib/freightliner/describe.lua",
      ["freightliner.filters"]                 = "lua/stdlib/freightliner/filters.lua",
      ["freightliner"]                         = "lua/stdlib/freightliner/init.lua",
      ["freightliner.interpolate"]             = "lua/stdlib/freightliner/interpolate.lua",
      ["freightliner.json"]                    = "lua/stdlib/freightliner/json.lua",
      ["freightliner.log"]                     = "lua/stdlib/freightliner/log.lua",
      ["freightliner.metrics"]                 = "lua/stdlib/freightliner/metrics.lua",
      ["freightliner.exitcode"]                = "lua/stdlib/freightliner/exitcode.lua",
      ["freightliner.printable"]               = "lua/stdlib/freightliner/printable.lua",
      ["freightliner.clicheck"]                = "lua/stdlib/freightliner/clicheck.lua",
      ["freightliner.report"]                  = "lua/stdlib/freightliner/report.lua",
      ["freightliner.naming"]                  = "lua/stdlib/freightliner/naming.lua",
      ["freightliner.pretty"]                  = "lua/stdlib/freightliner/pretty.lua",
      ["freightliner.progress"]                = "lua/stdlib/freightliner/progress.lua",
      ["freightliner.prune"]                   = "lua/stdlib/freightliner/prune.lua",
      ["freightliner.regflags"]                = "lua/stdlib/freightliner/regflags.lua",
      ["freightliner.registry"]                = "lua/stdlib/freightliner/registry.lua",
      ["freightliner.repl"]                    = "lua/stdlib/freightliner/repl.lua",
      ["freightliner.replicate"]               = "lua/stdlib/freightliner/replicate.lua",
      ["freightliner.runner"]                  = "lua/stdlib/freightliner/runner.lua",
      ["freightliner.schedule"]                = "lua/stdlib/freightliner/schedule.lua",
      ["freightliner.schema"]                  = "lua/stdlib/freightliner/schema.lua",
      ["freightliner.script"]                  = "lua/stdlib/freightliner/script.lua",
      ["freightliner.semver"]                  = "lua/stdlib/freightliner/semver.lua",
      ["freightliner.shard"]                   = "lua/stdlib/freightliner/shard.lua",
      ["freightliner.verify"]                  = "lua/stdlib/freightliner/verify.lua",
      ["freightliner.serve"]                   = "lua/stdlib/freightliner/serve.lua",
    },
    bin = {
      freightliner = "build.luarocks/bin/freightliner",
    },
  },
}
