--- freightliner version: versions of Freightliner and the libraries it uses.
local exitcode = require("freightliner.exitcode")
local fl = require("freightliner")

return {
  summary = "print the versions of Freightliner, Lua, libcurl and OpenSSL",
  usage = "usage: freightliner version\n\n"
    .. "Prints Freightliner's version and those of the Lua, libcurl and\n"
    .. "OpenSSL it runs on.",
  run = function(argv)
    if argv[1] then
      io.stderr:write("freightliner: version takes no arguments; see 'freightliner help version'\n")
      return exitcode.USAGE
    end
    local v = fl.versions()
    io.stdout:write(string.format(
      "freightliner %s\n%s\nlibcurl %s\n%s\n", v.freightliner, v.lua, v.curl, v.ssl))
    return exitcode.OK
  end,
}
