--- freightliner.printable: names from a remote registry made safe to print.
--
--   printable.escape(s) -> s with every control character (C0, DEL, C1),
--                          every backslash and every byte that is not
--                          UTF-8 written as \\, \n, \r, \t, \e or \xNN
--
-- A tag or repository name is data the operator does not control: printed
-- raw, ESC, BEL, CR or LF in it could retitle or clear the terminal or forge
-- a line of output. Every human-readable line the CLI writes about a remote
-- name goes through here (text logs are escaped by the C logger in the same
-- way); JSON output escapes them as JSON does.

local M = {}

local named = { ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\27"] = "\\e" }

local function byte_escape(c)
  return named[c] or string.format("\\x%02x", c:byte())
end

-- One UTF-8 sequence, or a lone byte: escaped when a control or invalid.
local function escape_char(ch)
  if #ch == 1 then
    local b = ch:byte()
    if b < 0x20 or b == 0x7f or b == 0x5c or b >= 0x80 then return byte_escape(ch) end
    return ch
  end
  local cp = utf8.codepoint(ch)
  if cp >= 0x80 and cp <= 0x9f then -- C1 controls (CSI is U+009B)
    return (ch:gsub(".", byte_escape))
  end
  return ch
end

function M.escape(s)
  s = tostring(s)
  if not s:find("[%c\\\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = s:byte(i)
    local len = b < 0x80 and 1 or b >= 0xf0 and b < 0xf5 and 4 or b >= 0xe0 and 3 or b >= 0xc2 and b < 0xe0 and 2 or 1
    local ch = s:sub(i, i + len - 1)
    if len > 1 and (#ch ~= len or not utf8.len(ch)) then
      ch, len = s:sub(i, i), 1
    end
    out[#out + 1] = escape_char(ch)
    i = i + len
  end
  return table.concat(out)
end

return M
