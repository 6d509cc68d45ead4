--- freightliner.semver: semantic versions (SemVer 2.0.0) and version ranges,
-- for selecting image tags.
--
--   semver.parse("v1.2.3-rc.1+b5")   -> version | nil, message, "INVALID"
--       tolerant: a leading v/V, a missing minor or patch ("1.2" = 1.2.0);
--       { major, minor, patch, prerelease = {ids}, build = {ids}, text }
--   semver.parse_strict(s)           -> exactly MAJOR.MINOR.PATCH[-PRE][+BUILD]
--   semver.compare(a, b)             -> -1 | 0 | 1 (precedence; build ignored)
--   semver.sort(list [, descending]) -> the list sorted (strings or versions)
--   semver.range(text [, opts])      -> range | nil, message, "INVALID"
--   range:test(v)                    -> boolean (v: string or version)
--   semver.satisfies(v, text [, opts]) -> boolean | nil, message, "INVALID"
--   semver.max_satisfying(list, text [, opts]) -> the highest match or nil
--
-- Ranges: comparators `=1.2.3` `>1.2` `>=1.2` `<2` `<=2.1` joined by spaces
-- (or commas) are ANDed; `||` separates alternatives; `1.2.3 - 2.0` is
-- inclusive; `1.x`, `1.2.*`, `1` are wildcards; `~1.4` = >=1.4.0 <1.5.0;
-- `^2` = >=2.0.0 <3.0.0, `^0.2.3` = >=0.2.3 <0.3.0, `^0.0.3` = >=0.0.3
-- <0.0.4. A pre-release version (1.3.0-rc.1) matches only if the range opts
-- in (opts.include_prerelease) or one of its comparators names a
-- pre-release of the same MAJOR.MINOR.PATCH (`>=1.3.0-rc.0`).

local M = {}

local Version = {}
Version.__index = Version
Version.__name = "freightliner.semver.version"

-- ---- versions -------------------------------------------------------------

local function numeric(s)
  return s:match("^%d+$") ~= nil
end

-- A numeric part: digits, no leading zero, fits an integer.
local function number(s, what, text)
  if not numeric(s) then
    return nil, string.format("invalid version '%s': %s '%s' is not a number", text, what, s)
  end
  if #s > 1 and s:sub(1, 1) == "0" then
    return nil, string.format("invalid version '%s': %s '%s' has a leading zero", text, what, s)
  end
  local n = math.tointeger(tonumber(s))
  if not n or #s > 18 then
    return nil, string.format("invalid version '%s': %s '%s' is too large", text, what, s)
  end
  return n
end

local function identifiers(s, what, text, check_zero)
  local ids = {}
  if s == "" then
    return nil, string.format("invalid version '%s': empty %s", text, what)
  end
  for id in (s .. "."):gmatch("([^.]*)%.") do
    if id == "" then
      return nil, string.format("invalid version '%s': empty %s identifier", text, what)
    end
    if not id:match("^[0-9A-Za-z-]+$") then
      return nil, string.format("invalid version '%s': %s identifier '%s' has characters "
        .. "other than [0-9A-Za-z-]", text, what, id)
    end
    if check_zero and numeric(id) then
      if #id > 1 and id:sub(1, 1) == "0" then
        return nil, string.format("invalid version '%s': numeric %s identifier '%s' has a leading zero",
          text, what, id)
      end
      ids[#ids + 1] = math.tointeger(tonumber(id)) or id
    else
      ids[#ids + 1] = id
    end
  end
  return ids
end

local function new_version(major, minor, patch, pre, build, text)
  return setmetatable({ major = major, minor = minor, patch = patch,
                        prerelease = pre or {}, build = build or {}, text = text }, Version)
end

local function parse(text, strict)
  if type(text) ~= "string" then
    return nil, string.format("invalid version: expected a string, got %s", type(text)), "INVALID"
  end
  local s = text
  if not strict then s = s:gsub("^[vV]", "", 1) end
  local core_part, rest = s:match("^([^-+]*)(.*)$")
  local build_text = rest:match("%+(.*)$")
  local pre_text = rest:match("^%-([^+]*)")
  if rest ~= "" and not pre_text and not build_text then
    return nil, string.format("invalid version '%s'", text), "INVALID"
  end
  local parts = {}
  for p in (core_part .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = p end
  if #parts > 3 or (strict and #parts ~= 3) then
    return nil, string.format("invalid version '%s': expected MAJOR.MINOR.PATCH", text), "INVALID"
  end
  local nums = {}
  local names = { "major", "minor", "patch" }
  for i = 1, 3 do
    if parts[i] then
      local n, err = number(parts[i], names[i], text)
      if not n then return nil, err, "INVALID" end
      nums[i] = n
    else
      nums[i] = 0
    end
  end
  local pre, build, err
  if pre_text then
    pre, err = identifiers(pre_text, "pre-release", text, true)
    if not pre then return nil, err, "INVALID" end
  end
  if build_text then
    build, err = identifiers(build_text, "build metadata", text, false)
    if not build then return nil, err, "INVALID" end
  end
  return new_version(nums[1], nums[2], nums[3], pre, build, text)
end

function M.parse(text)
  if getmetatable(text) == Version then return text end
  return parse(text, false)
end

function M.parse_strict(text)
  return parse(text, true)
end

function M.is_version(v)
  return getmetatable(v) == Version
end

local function compare_ids(a, b)
  local ta, tb = math.type(a) == "integer", math.type(b) == "integer"
  if ta and tb then
    return a < b and -1 or (a > b and 1 or 0)
  end
  if ta ~= tb then return ta and -1 or 1 end -- numeric < alphanumeric
  return a < b and -1 or (a > b and 1 or 0)
end

local function compare(a, b)
  for _, f in ipairs({ "major", "minor", "patch" }) do
    if a[f] ~= b[f] then return a[f] < b[f] and -1 or 1 end
  end
  local pa, pb = a.prerelease, b.prerelease
  if #pa == 0 and #pb == 0 then return 0 end
  if #pa == 0 then return 1 end -- a release ranks above its pre-releases
  if #pb == 0 then return -1 end
  for i = 1, math.max(#pa, #pb) do
    if pa[i] == nil then return -1 end
    if pb[i] == nil then return 1 end
    local c = compare_ids(pa[i], pb[i])
    if c ~= 0 then return c end
  end
  return 0
end

local function coerce(v, argn)
  if getmetatable(v) == Version then return v end
  local p, err = parse(v, false)
  if not p then error(string.format("bad argument #%d: %s", argn, err), 3) end
  return p
end

--- Precedence of two versions (strings or parsed): -1, 0 or 1. Raises on an
-- invalid version.
function M.compare(a, b)
  return compare(coerce(a, 1), coerce(b, 2))
end

function Version.__eq(a, b) return compare(a, b) == 0 end
function Version.__lt(a, b) return compare(a, b) < 0 end
function Version.__le(a, b) return compare(a, b) <= 0 end

function Version:__tostring()
  local s = string.format("%d.%d.%d", self.major, self.minor, self.patch)
  if #self.prerelease > 0 then
    local ids = {}
    for i, id in ipairs(self.prerelease) do ids[i] = tostring(id) end
    s = s .. "-" .. table.concat(ids, ".")
  end
  if #self.build > 0 then s = s .. "+" .. table.concat(self.build, ".") end
  return s
end

function Version:is_prerelease()
  return #self.prerelease > 0
end

--- Sort a list of versions (strings or parsed) by precedence, ties by text.
function M.sort(list, descending)
  local keyed = {}
  for i, v in ipairs(list) do keyed[i] = { v = v, p = coerce(v, 1) } end
  table.sort(keyed, function(x, y)
    local c = compare(x.p, y.p)
    if c == 0 then c = (tostring(x.v) < tostring(y.v)) and -1 or 1 end
    if descending then return c > 0 end
    return c < 0
  end)
  for i, k in ipairs(keyed) do list[i] = k.v end
  return list
end

-- ---- ranges ---------------------------------------------------------------

local Range = {}
Range.__index = Range
Range.__name = "freightliner.semver.range"

local function range_error(text, fmt, ...)
  return nil, string.format("invalid semver range '%s': " .. fmt, text, ...), "INVALID"
end

local function is_x(s)
  return s == "x" or s == "X" or s == "*"
end

-- A partial version: up to three parts, each a number or a wildcard; a
-- pre-release only with all three numbers. Returns { n = {..}, pre } where n
-- holds the numbers before the first wildcard.
local function partial(s, text)
  s = s:gsub("^[vV]", "", 1)
  if s == "" or is_x(s) then return { n = {} } end
  local core_part, rest = s:match("^([^-+]*)(.*)$")
  local parts = {}
  for p in (core_part .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = p end
  if #parts > 3 then return range_error(text, "'%s' has more than three parts", s) end
  local n, wild = {}, false
  for _, p in ipairs(parts) do
    if is_x(p) then
      wild = true
    elseif wild then
      return range_error(text, "'%s': a number may not follow a wildcard", s)
    else
      if not numeric(p) or (#p > 1 and p:sub(1, 1) == "0") or #p > 18 then
        return range_error(text, "'%s' is not a version (expected numbers like 1.2.3, or x)", s)
      end
      n[#n + 1] = math.tointeger(tonumber(p))
    end
  end
  local pre
  if rest ~= "" then
    if #n < 3 then
      return range_error(text, "'%s': a pre-release needs MAJOR.MINOR.PATCH", s)
    end
    local v, err = parse(s, true)
    if not v then return range_error(text, "%s", (err:gsub("^invalid version '[^']*': ", ""))) end
    pre = v.prerelease
  end
  return { n = n, pre = pre }
end

local function ver(maj, min, pat, pre)
  return new_version(maj, min or 0, pat or 0, pre)
end

local ZERO_PRE = { 0 } -- "-0": below every pre-release of that version

-- Comparators for one primitive (op, partial) appended to set.
local function desugar(op, p, set)
  local n = p.n
  local function add(o, v) set[#set + 1] = { op = o, v = v } end
  local exact = #n == 3
  if op == "" or op == "=" then
    if #n == 0 then return end -- any
    if exact then add("=", ver(n[1], n[2], n[3], p.pre)) return end
    add(">=", ver(n[1], n[2], 0))
    if #n == 1 then add("<", ver(n[1] + 1, 0, 0, ZERO_PRE))
    else add("<", ver(n[1], n[2] + 1, 0, ZERO_PRE)) end
  elseif op == ">" then
    if #n == 0 then add("<", ver(0, 0, 0, ZERO_PRE)) return end -- nothing
    if exact then add(">", ver(n[1], n[2], n[3], p.pre))
    elseif #n == 1 then add(">=", ver(n[1] + 1, 0, 0))
    else add(">=", ver(n[1], n[2] + 1, 0)) end
  elseif op == ">=" then
    if #n == 0 then return end
    add(">=", ver(n[1], n[2], n[3], p.pre))
  elseif op == "<" then
    if #n == 0 then add("<", ver(0, 0, 0, ZERO_PRE)) return end
    if exact then add("<", ver(n[1], n[2], n[3], p.pre))
    else add("<", ver(n[1], n[2], 0, ZERO_PRE)) end
  elseif op == "<=" then
    if #n == 0 then return end
    if exact then add("<=", ver(n[1], n[2], n[3], p.pre))
    elseif #n == 1 then add("<", ver(n[1] + 1, 0, 0, ZERO_PRE))
    else add("<", ver(n[1], n[2] + 1, 0, ZERO_PRE)) end
  elseif op == "~" or op == "~>" then
    if #n == 0 then return end
    add(">=", ver(n[1], n[2], n[3], p.pre))
    if #n == 1 then add("<", ver(n[1] + 1, 0, 0, ZERO_PRE))
    else add("<", ver(n[1], n[2] + 1, 0, ZERO_PRE)) end
  elseif op == "^" then
    if #n == 0 then return end
    add(">=", ver(n[1], n[2], n[3], p.pre))
    if n[1] ~= 0 or #n == 1 then
      add("<", ver(n[1] + 1, 0, 0, ZERO_PRE))
    elseif n[2] ~= 0 or #n == 2 then
      add("<", ver(0, n[2] + 1, 0, ZERO_PRE))
    else
      add("<", ver(0, 0, n[3] + 1, ZERO_PRE))
    end
  end
end

local OPS = { [""] = true, ["="] = true, [">"] = true, [">="] = true, ["<"] = true,
              ["<="] = true, ["~"] = true, ["~>"] = true, ["^"] = true }

-- One alternative (no "||"): a list of comparators.
local function comparator_set(alt, text)
  local set = {}
  local lo, hi = alt:match("^(%S+)%s+%-%s+(%S+)$")
  if lo then -- hyphen range: inclusive on both ends
    local a, err = partial(lo, text)
    if not a then return nil, err end
    local b
    b, err = partial(hi, text)
    if not b then return nil, err end
    desugar(">=", a, set)
    desugar("<=", b, set)
    return set
  end
  -- join "op version" written with a space: ">= 1.2"
  local tokens = {}
  local pending_op
  for tok in alt:gsub(",", " "):gmatch("%S+") do
    if pending_op then
      tok = pending_op .. tok
      pending_op = nil
    end
    if OPS[tok] and tok ~= "" then
      pending_op = tok
    else
      tokens[#tokens + 1] = tok
    end
  end
  if pending_op then return range_error(text, "'%s' needs a version after it", pending_op) end
  if #tokens == 0 then
    return range_error(text, "empty alternative")
  end
  for _, tok in ipairs(tokens) do
    local op, rest = tok:match("^([<>=~^]*)(.*)$")
    if not OPS[op] then return range_error(text, "unknown operator '%s'", op) end
    if rest == "" then return range_error(text, "'%s' needs a version after it", op) end
    if rest == "-" then return range_error(text, "a hyphen range needs spaces around '-'") end
    local p, err = partial(rest, text)
    if not p then return nil, err end
    desugar(op, p, set)
  end
  return set
end

--- Parse a range. opts.include_prerelease: pre-release versions may match.
function M.range(text, opts)
  if type(text) ~= "string" then
    return nil, string.format("invalid semver range: expected a string, got %s", type(text)), "INVALID"
  end
  local trimmed = text:match("^%s*(.-)%s*$")
  if trimmed == "" then return range_error(text, "empty range (use '*' for any version)") end
  local alts = {}
  for alt in (trimmed .. "||"):gmatch("(.-)||") do
    alt = alt:match("^%s*(.-)%s*$")
    if alt == "" then return range_error(text, "empty alternative around '||'") end
    local set, err = comparator_set(alt, text)
    if not set then return nil, err, "INVALID" end
    alts[#alts + 1] = set
  end
  return setmetatable({ text = text, alternatives = alts,
                        include_prerelease = opts and opts.include_prerelease or false }, Range)
end

local function test_comparator(c, v)
  local r = compare(v, c.v)
  if c.op == "=" then return r == 0
  elseif c.op == ">" then return r > 0
  elseif c.op == ">=" then return r >= 0
  elseif c.op == "<" then return r < 0
  else return r <= 0 end
end

local function test_set(set, v, include_pre)
  for _, c in ipairs(set) do
    if not test_comparator(c, v) then return false end
  end
  if #v.prerelease == 0 or include_pre then return true end
  -- a pre-release only where a comparator asks for one of the same version
  for _, c in ipairs(set) do
    local cv = c.v
    if #cv.prerelease > 0 and cv.prerelease ~= ZERO_PRE and cv.major == v.major
      and cv.minor == v.minor and cv.patch == v.patch then
      return true
    end
  end
  return false
end

--- True if v (a string or parsed version) is in the range; a string that is
-- not a version is never in it.
function Range:test(v)
  local p = M.parse(v)
  if not p then return false end
  for _, set in ipairs(self.alternatives) do
    if test_set(set, p, self.include_prerelease) then return true end
  end
  return false
end

function Range:__tostring()
  local alts = {}
  for i, set in ipairs(self.alternatives) do
    local cs = {}
    for j, c in ipairs(set) do cs[j] = c.op .. tostring(c.v) end
    alts[i] = #cs > 0 and table.concat(cs, " ") or "*"
  end
  return table.concat(alts, " || ")
end

function M.satisfies(v, text, opts)
  local r, err, code = M.range(text, opts)
  if not r then return nil, err, code end
  return r:test(v)
end

function M.max_satisfying(list, text, opts)
  local r, err, code = M.range(text, opts)
  if not r then return nil, err, code end
  local best, bestp
  for _, v in ipairs(list) do
    local p = M.parse(v)
    if p and r:test(p) and (not bestp or compare(p, bestp) > 0) then best, bestp = v, p end
  end
  return best
end

M.Version = Version
M.Range = Range

return M
