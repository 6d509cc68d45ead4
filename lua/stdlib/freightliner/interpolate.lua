--- freightliner.interpolate: ${VAR} and ${VAR:-default} in configuration
-- strings, from the environment.
--
--   interpolate.string(s [, env]) -> result, changed | nil, message
--   interpolate.document(doc, positions [, env]) -> problems, changed, failed
--       replaces every string value (not keys) of a loaded YAML document in
--       place; problems: { {line=, column=, message=} }; changed[t][k] is
--       true where a value was interpolated, failed[t][k] where it could
--       not be (so that a validator need not report that value again).
--
-- env is a function(name) -> value | nil, or a table; default os.getenv.
-- ${VAR:-default} uses the default when VAR is unset or empty; $${ is a
-- literal ${. An unset variable without a default is an error.

local M = {}

local function lookup(env, name)
  if type(env) == "table" then return env[name] end
  return env(name)
end

function M.string(s, env)
  env = env or os.getenv
  if not s:find("$", 1, true) then return s, false end
  local out, i, n, changed = {}, 1, #s, false
  while i <= n do
    local a = s:find("$", i, true)
    if not a then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, a - 1)
    if s:sub(a, a + 2) == "$${" then
      out[#out + 1] = "${"
      i = a + 3
      changed = true
    elseif s:sub(a + 1, a + 1) == "{" then
      local close = s:find("}", a + 2, true)
      if not close then
        return nil, string.format("unterminated '${' in '%s'", s)
      end
      local body = s:sub(a + 2, close - 1)
      local name, default = body:match("^([%a_][%w_]*):%-(.*)$")
      if not name then name = body:match("^([%a_][%w_]*)$") end
      if not name then
        return nil, string.format("'${%s}' is not a variable reference (expected ${NAME} or ${NAME:-default})",
          body)
      end
      local value = lookup(env, name)
      if default and (value == nil or value == "") then value = default end
      if value == nil then
        return nil, string.format("environment variable '%s' is not set (write ${%s:-default} to give a default)",
          name, name)
      end
      out[#out + 1] = tostring(value)
      i = close + 1
      changed = true
    else
      out[#out + 1] = "$"
      i = a + 1
    end
  end
  return table.concat(out), changed
end

function M.document(doc, positions, env)
  local problems, changed, failed = {}, {}, {}
  local seen = {}
  local function walk(t)
    if seen[t] then return end
    seen[t] = true
    local pos = positions and positions[t]
    for k, v in pairs(t) do
      if type(v) == "string" then
        local r, err = M.string(v, env)
        if not r then
          local p = pos and pos.values[k] or pos or {}
          problems[#problems + 1] = { line = p.line, column = p.column, message = err }
          failed[t] = failed[t] or {}
          failed[t][k] = true
        elseif err then -- changed
          t[k] = r
          changed[t] = changed[t] or {}
          changed[t][k] = true
        end
      elseif type(v) == "table" then
        walk(v)
      end
    end
  end
  if type(doc) == "table" then walk(doc) end
  return problems, changed, failed
end

return M
