--- freightliner.repl: an interactive Lua prompt with the API loaded.
--
--   repl.run([opts]) -> exit status
--     opts.interactive: use readline, prompts and history (default: when
--       stdin is a terminal); opts.input(prompt) -> line | nil replaces
--       reading; opts.output / opts.errors: files (stdout / stderr);
--       opts.history: history file (default $FREIGHTLINER_HISTORY or
--       ~/.freightliner_history; false: none); opts.env: globals (_G).
--   repl.complete(word [, env]) -> sorted candidates for tab completion
--   repl.compile(source [, env]) -> chunk | nil, message | nil, "incomplete"
--
-- Like lua5.4: a line that is an expression is evaluated and printed
-- (`return <line>` is tried first); an incomplete statement continues on
-- the next line with a `>>` prompt; errors print with a traceback (from a
-- non-interactive stdin, the first error ends the run with status 1) and the
-- prompt comes back. Results are pretty-printed (freightliner.pretty).
-- `.exit` or end of input (Ctrl-D) quits. Ctrl-C while a statement runs
-- stops that statement only (its copies are cancelled; the next statement
-- works); Ctrl-C at the prompt clears the line.

local core = require("freightliner.core")
local pretty = require("freightliner.pretty")

local M = {}

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                   "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- ---- completion -----------------------------------------------------------

local function index(v, k)
  local ok, r = pcall(function() return v[k] end)
  if ok then return r end
  return nil
end

-- Names visible on v: its own string keys and those its metatable's
-- __index tables offer (methods), a few levels deep.
local function names_of(v, out)
  local seen = {}
  for _ = 1, 4 do
    if type(v) == "table" and not seen[v] then
      seen[v] = true
      for k in next, v do
        if type(k) == "string" and k:match("^[%a_][%w_]*$") then out[k] = out[k] or index(v, k) or true end
      end
    end
    local mt = getmetatable(v)
    local idx = type(mt) == "table" and rawget(mt, "__index") or nil
    if type(idx) ~= "table" then break end
    v = idx
  end
  return out
end

function M.complete(word, env)
  env = env or _G
  local base, sep, partial = word:match("^(.*)([.:])([%w_]*)$")
  local out = {}
  if not base then
    local names = names_of(env, {})
    for _, k in ipairs(KEYWORDS) do names[k] = names[k] or true end
    for k, v in pairs(names) do
      if k:sub(1, #word) == word then
        out[#out + 1] = k .. (type(v) == "function" and "(" or "")
      end
    end
  else
    local v = env
    for part in (base .. "."):gmatch("([^.]*)%.") do
      if not part:match("^[%a_][%w_]*$") then return {} end
      v = index(v, part)
      if v == nil then return {} end
    end
    for k, x in pairs(names_of(v, {})) do
      if k:sub(1, #partial) == partial and (sep == "." or type(x) == "function") then
        out[#out + 1] = base .. sep .. k .. (type(x) == "function" and "(" or "")
      end
    end
  end
  table.sort(out)
  return out
end

-- ---- evaluation -----------------------------------------------------------

--- Compile a statement or expression the way lua5.4's REPL does.
function M.compile(source, env)
  env = env or _G
  local chunk = load("return " .. source, "=stdin", "t", env)
  if chunk then return chunk end
  local err
  chunk, err = load(source, "=stdin", "t", env)
  if chunk then return chunk end
  if err:sub(-5) == "<eof>" then return nil, "incomplete" end
  return nil, err
end

local function traceback(e)
  if e == "interrupted" and core.engine.signal() then return e end
  local msg = e
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    msg = (mt and mt.__tostring) and tostring(e) or string.format("(error object is a %s value)", type(e))
  end
  local tb = debug.traceback(msg, 2)
  -- drop the REPL's own frames below the user's code
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
  return cut and tb:sub(1, cut - 1) or tb
end

local function results(out, ok_and_values)
  local n = ok_and_values.n
  if n < 2 then return end
  local parts = {}
  for i = 2, n do parts[#parts + 1] = pretty.format(ok_and_values[i]) end
  out:write(table.concat(parts, "\t"), "\n")
end

local function history_path(opts)
  if opts.history == false then return nil end
  if opts.history then return opts.history end
  local env = os.getenv("FREIGHTLINER_HISTORY")
  if env then return env ~= "" and env or nil end
  local home = os.getenv("HOME")
  return home and (home .. "/.freightliner_history") or nil
end

function M.run(opts)
  opts = opts or {}
  local env = opts.env or _G
  env.fl = env.fl or require("freightliner")
  local out, errs = opts.output or io.stdout, opts.errors or io.stderr
  local interactive = opts.interactive
  if interactive == nil then interactive = core.fs.isatty(0) end
  local rl = core.readline
  local history = interactive and history_path(opts)
  local input = opts.input
  if not input then
    if interactive then
      input = rl.readline
      rl.set_completer(function(word) return M.complete(word, env) end)
      if history then rl.read_history(history) end
    else
      input = function() return io.read("l") end
    end
  end
  if interactive then
    -- Ctrl-C stops the running statement, not the REPL
    core.engine.trap_signals({ statement = true })
    out:write(string.format("Freightliner %s (%s). `fl` is the API; Tab completes, .exit or Ctrl-D quits.\n",
      env.fl.VERSION, _VERSION))
  end
  local buffer, status
  while true do
    local line = input(buffer and ">> " or "> ")
    if line == nil then
      if interactive then out:write("\n") end
      break
    end
    if interactive and line:match("%S") then rl.add_history(line) end
    if not buffer and line:match("^%s*%.exit%s*$") then break end
    buffer = buffer and (buffer .. "\n" .. line) or line
    if buffer:match("^%s*$") then
      buffer = nil
    else
      local chunk, err = M.compile(buffer, env)
      if chunk then
        buffer = nil
        local r = table.pack(xpcall(chunk, traceback))
        local sig = core.engine.signal()
        if sig then
          require("freightliner.copy").abandon()
          if sig ~= 2 then -- SIGTERM ends the session
            status = 128 + sig
            break
          end
          core.engine.clear_signal()
          if r[1] then errs:write("interrupted\n") end
        end
        if r[1] then
          results(out, r)
        else
          errs:write(tostring(r[2]), "\n")
          if not interactive then return 1 end -- a script on stdin stops at its first error
        end
      elseif err ~= "incomplete" then
        buffer = nil
        errs:write(err, "\n")
        if not interactive then return 1 end
      end
    end
    out:flush()
    errs:flush()
  end
  if buffer then
    errs:write("incomplete statement at end of input\n")
    if not interactive then return 1 end
  end
  if interactive then
    rl.set_completer(nil)
    if history then rl.write_history(history) end
  end
  return status or 0
end

return M
