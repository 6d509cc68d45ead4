--- freightliner validate-config FILE...: check sync files without running them.
local config = require("freightliner.config")

local usage = [[usage: freightliner validate-config FILE...

Checks a YAML sync file: its keys and types, globs, regular expressions,
semver ranges, platforms, registry names, ${VAR} references and that no
plain-text password is in it. Prints "FILE: valid (N registries, M sync
entries)", or one line per problem, "FILE:LINE:COLUMN: message", sorted by
position.

exit status: 0 valid, 2 problems found (or usage error).]]

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

return {
  summary = "check a YAML sync file and report problems with their positions",
  usage = usage,
  run = function(argv)
    if not argv[1] then
      io.stderr:write("freightliner: validate-config needs a FILE; see 'freightliner help validate-config'\n")
      return 2
    end
    for _, a in ipairs(argv) do
      if a:match("^%-") then
        io.stderr:write(string.format(
          "freightliner: unknown option '%s'; see 'freightliner help validate-config'\n", a))
        return 2
      end
    end
    local status = 0
    for _, path in ipairs(argv) do
      local plan, problems = config.load(path)
      if plan then
        local n = count(plan.registries)
        local m = #plan.entries
        io.stdout:write(string.format("%s: valid (%d %s, %d sync %s)\n", path, n,
          n == 1 and "registry" or "registries", m, m == 1 and "entry" or "entries"))
      else
        status = 2
        for _, p in ipairs(problems) do
          io.stdout:write(config.format_problem(path, p), "\n")
        end
      end
    end
    return status
  end,
}
