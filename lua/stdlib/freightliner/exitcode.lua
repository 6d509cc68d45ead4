--- freightliner.exitcode: the one table of exit statuses of the CLI, and the
-- user-error object that carries a status and a message up to cli.main.
--
--   exitcode.OK 0        everything asked was done (a dry run: would be)
--   exitcode.FAILED 1    some images failed (or would fail)
--   exitcode.USAGE 2     usage or configuration error, found before any
--                        transfer starts
--   exitcode.SIGINT 130, exitcode.SIGTERM 143   interrupted
--
--   exitcode.raise(status, message)   raise a user error (no traceback)
--   exitcode.usage(message, command)  raise a usage error ending with
--                                     "; see 'freightliner help COMMAND'"
--   exitcode.is_user_error(e)         -> e when e is such an error
--
-- Anything else that reaches cli.main as an error is a bug in Freightliner:
-- it is printed with its traceback and a line asking to report it.

local M = {
  OK = 0, FAILED = 1, USAGE = 2, SIGINT = 130, SIGTERM = 143,
  TABLE = {
    { 0, "everything asked was done (a dry run: would be done)" },
    { 1, "some images failed (a dry run: would fail), or a selection selected nothing under --strict" },
    { 2, "usage or configuration error, found before any transfer starts" },
    { 130, "interrupted by SIGINT (Ctrl-C)" },
    { 143, "interrupted by SIGTERM" },
  },
}

local UserError = {}
UserError.__index = UserError
UserError.__name = "freightliner.user_error"
function UserError:__tostring() return self.message end

function M.raise(status, message)
  error(setmetatable({ status = status, message = tostring(message) }, UserError), 0)
end

function M.usage(message, command)
  if command then message = string.format("%s; see 'freightliner help %s'", message, command) end
  M.raise(M.USAGE, message)
end

function M.is_user_error(e)
  return getmetatable(e) == UserError and e or nil
end

--- The exit-status paragraph of a command's help.
function M.help()
  local lines = { "exit status:" }
  for _, row in ipairs(M.TABLE) do
    local line = string.format("  %-4d", row[1])
    for word in row[2]:gmatch("%S+") do
      if #line + 1 + #word > 76 then
        lines[#lines + 1] = line
        line = "       " .. word
      else
        line = line .. " " .. word
      end
    end
    lines[#lines + 1] = line
  end
  return table.concat(lines, "\n")
end

return M
