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
libyaml) is exposed to Lua as freightliner.core; the stdlib (freightliner.*)
provides the CLI commands, policies and replication planning.
]],
  license = "Apache-2.0",
  homepage = "https://github.com/freightliner/freightliner",
}

dependencies = {
  "lua >= 5.4, < 5.5",
  "lua-cjson",
}

external_dependencies = {
  -- Debian keeps curl.h under the multiarch include dir: look for the library.
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/evp.h" },
  JANSSON = { header = "jansson.h" },
  YAML = { header = "yaml.h" },
  MICROHTTPD = { header = "microhttpd.h" },
}

build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    FL_TESTS = "OFF",
  },
  -- CMakeLists.txt has no install rules: the files are listed here.
  install_pass = false,
  install = {
    lib = {
      ["freightliner.core"] = "build.luarocks/lua/freightliner/core.so",
    },
    lua = {
      ["freightliner.args"]                    = "lua/stdlib/freightliner/args.lua",
      ["freightliner.canonical"]               = "lua/stdlib/freightliner/canonical.lua",
      ["freightliner.checkpoint"]              = "lua/stdlib/freightliner/checkpoint.lua",
      ["freightliner.cli"]                     = "lua/stdlib/freightliner/cli.lua",
      ["freightliner.cmd.catalog"]             = "lua/stdlib/freightliner/cmd/catalog.lua",
      ["freightliner.cmd.eval"]                = "lua/stdlib/freightliner/cmd/eval.lua",
      ["freightliner.cmd.help"]                = "lua/stdlib/freightliner/cmd/help.lua",
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
      ["freightliner.naming"]                  = "lua/stdlib/freightliner/naming.lua",
      ["freightliner.pretty"]                  = "lua/stdlib/freightliner/pretty.lua",
      ["freightliner.progress"]                = "lua/stdlib/freightliner/progress.lua",
      ["freightliner.regflags"]                = "lua/stdlib/freightliner/regflags.lua",
      ["freightliner.registry"]                = "lua/stdlib/freightliner/registry.lua",
      ["freightliner.repl"]                    = "lua/stdlib/freightliner/repl.lua",
      ["freightliner.replicate"]               = "lua/stdlib/freightliner/replicate.lua",
      ["freightliner.runner"]                  = "lua/stdlib/freightliner/runner.lua",
      ["freightliner.schedule"]                = "lua/stdlib/freightliner/schedule.lua",
      ["freightliner.schema"]                  = "lua/stdlib/freightliner/schema.lua",
      ["freightliner.script"]                  = "lua/stdlib/freightliner/script.lua",
      ["freightliner.semver"]                  = "lua/stdlib/freightliner/semver.lua",
      ["freightliner.serve"]                   = "lua/stdlib/freightliner/serve.lua",
    },
    bin = {
      freightliner = "build.luarocks/bin/freightliner",
    },
  },
}
