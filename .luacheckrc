-- luacheck configuration (lua-check 1.1, Debian 12). Run by scripts/check.sh
-- and the pre-commit hook.
std = "lua54"
max_line_length = 120
codes = true

-- The busted specs and their helpers.
files["tests/lua"] = { std = "+busted" }

-- User scripts run by `freightliner run` see the `fl` global.
files["scripts/examples"] = { globals = { "fl" } }
files["e2e"] = { globals = { "fl" } }

exclude_files = { "build*/**", ".git/**" }
