--- freightliner validate-config FILE...: check sync files without running them.
local exitcode = require("freightliner.exitcode")
local config = require("freightliner.config")

local usage = [[usage: freightliner validate-config FILE...

Checks a YAML sync file: its keys and types, globs, regular expressions,
semver ranges, platforms, registry names, ${VAR} references, that no
plain-text password is in it, that it has sync entries, and that each
policy file loads and returns known hooks that are functions. Prints "FILE: valid (N registries, M sync
entries)", or one line per problem, "FILE:LINE:COLUMN: message", sorted by
position.

exit status: 0 valid, 2 problems found (or usage error).]]

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Each entry's policy file loaded and its hooks checked (what sync would do
-- first); prints the problems, returns true when there were some.
local function policy_problems(path, plan)
  local runner = require("freightliner.runner")
  local bad, seen = false, {}
  for _, e in ipairs(plan.entries) do
    if e.policy and not seen[e.policy] then
      seen[e.policy] = true
      local ok, hooks, err = pcall(runner.load_policy, e.policy)
      local msg = not ok and tostring(hooks) or (not hooks and err) or nil
      if msg then
        bad = true
        io.stdout:write(string.format("%s: %s\n", path, msg))
      end
    end
  end
  return bad
end

return {
  summary = "check a YAML sync file and report problems with their positions",
  usage = usage,
  run = function(argv)
    if not argv[1] then
      io.stderr:write("freightliner: validate-config needs a FILE; see 'freightliner help validate-config'\n")
      return exitcode.USAGE
    end
    for _, a in ipairs(argv) do
      if a:match("^%-") then
        io.stderr:write(string.format(
          "freightliner: unknown option '%s'; see 'freightliner help validate-config'\n", a))
        return exitcode.USAGE
      end
    end
    local status = exitcode.OK
    for _, path in ipairs(argv) do
      local plan, problems = config.load(path)
      if plan and #plan.entries == 0 then
        status = exitcode.USAGE
        io.stdout:write(string.format("%s:1:1: no sync entries: the file would copy nothing "
          .. "(an empty file, or one without a 'sync' list)\n", path))
      elseif plan and policy_problems(path, plan) then
        status = exitcode.USAGE
      elseif plan then
        local n = count(plan.registries)
        local m = #plan.entries
        io.stdout:write(string.format("%s: valid (%d %s, %d sync %s)\n", path, n,
          n == 1 and "registry" or "registries", m, m == 1 and "entry" or "entries"))
      else
        status = exitcode.USAGE
        for _, p in ipairs(problems) do
          io.stdout:write(config.format_problem(path, p), "\n")
        end
      end
    end
    return status
  end,
}
