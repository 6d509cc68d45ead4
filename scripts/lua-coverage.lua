-- lua-coverage.lua DIR [--min PCT] [--root lua/stdlib] [--out FILE]
--
-- Merges the .cov files that tests/coverage/flcov.lua wrote into DIR and
-- reports line coverage of every .lua file under ROOT: per file (lowest
-- first, so the floor is the first line) and in total. Executable lines
-- are the lines that carry an instruction in `luac5.4 -l -l -p` (the
-- compiler's own line table, every nested function included), so a comment,
-- a blank line or an `else` never counts. Exits 1 when the total is below
-- PCT, 2 on a usage error.

local args = { ... }
local dir, min, root, out = nil, nil, "lua/stdlib", nil
local i = 1
while i <= #args do
  local a = args[i]
  if a == "--min" then min = tonumber(args[i + 1]); i = i + 2
  elseif a == "--root" then root = args[i + 1]; i = i + 2
  elseif a == "--out" then out = args[i + 1]; i = i + 2
  elseif not dir then dir = a; i = i + 1
  else io.stderr:write("lua-coverage: unexpected argument ", a, "\n"); os.exit(2) end
end
if not dir or (args[2] == "--min" and not min) then
  io.stderr:write("usage: lua-coverage.lua DIR [--min PCT] [--root DIR] [--out FILE]\n")
  os.exit(2)
end

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local t = {}
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  return t
end

-- hits[rel][line] = count, merged over every process of the run
local hits, files_read = {}, 0
for _, f in ipairs(lines_of("find '" .. dir .. "' -name '*.cov' -type f 2>/dev/null")) do
  files_read = files_read + 1
  for l in io.lines(f) do
    local rel, line, n = l:match("^(.-)\t(%d+)\t(%d+)$")
    if rel then
      hits[rel] = hits[rel] or {}
      local h = hits[rel]
      h[tonumber(line)] = (h[tonumber(line)] or 0) + tonumber(n)
    end
  end
end

local rows, total_exec, total_hit = {}, 0, 0
for _, path in ipairs(lines_of("find '" .. root .. "' -name '*.lua' -type f | sort")) do
  local rel = path:sub(#root + 2)
  local exec = {}
  for _, l in ipairs(lines_of("luac5.4 -l -l -p '" .. path .. "' 2>/dev/null")) do
    -- VARARGPREP never fires a line hook (Lua 5.4 starts a vararg
    -- function's hooks after it), so a line with only that is not counted
    local n, op = l:match("^%s+%d+%s+%[(%d+)%]%s+(%u+)")
    if n and op ~= "VARARGPREP" then exec[tonumber(n)] = true end
  end
  local e, h, missed = 0, 0, {}
  local hr = hits[rel] or {}
  for line in pairs(exec) do
    e = e + 1
    if hr[line] then h = h + 1 else missed[#missed + 1] = line end
  end
  table.sort(missed)
  total_exec, total_hit = total_exec + e, total_hit + h
  rows[#rows + 1] = { rel = rel, exec = e, hit = h, pct = e > 0 and 100 * h / e or 100, missed = missed }
end
table.sort(rows, function(a, b)
  if a.pct ~= b.pct then return a.pct < b.pct end
  return a.rel < b.rel
end)

local report = {}
local function say(fmt, ...) report[#report + 1] = string.format(fmt, ...) end
say("%-44s %6s %6s %7s", "file (lowest first)", "lines", "hit", "cover")
for _, r in ipairs(rows) do
  say("%-44s %6d %6d %6.1f%%", r.rel, r.exec, r.hit, r.pct)
end
local pct = total_exec > 0 and 100 * total_hit / total_exec or 0
say("%-44s %6d %6d %6.1f%%", "TOTAL", total_exec, total_hit, pct)
if rows[1] then say("per-file floor: %s at %.1f%%", rows[1].rel, rows[1].pct) end
say("from %d coverage file(s) in %s", files_read, dir)
local text = table.concat(report, "\n") .. "\n"
io.write(text)
if out then
  local f = assert(io.open(out, "w"))
  f:write(text)
  for _, r in ipairs(rows) do
    if #r.missed > 0 then
      local m = {}
      for k = 1, #r.missed do m[k] = tostring(r.missed[k]) end
      f:write(r.rel, " missed: ", table.concat(m, ","), "\n")
    end
  end
  f:close()
end
if files_read == 0 then
  io.stderr:write("lua-coverage: no coverage files in ", dir, "\n")
  os.exit(1)
end
if min and pct < min then
  io.stderr:write(string.format("lua-coverage: %.1f%% of lua/stdlib lines is below the gate of %g%%\n", pct, min))
  os.exit(1)
end
