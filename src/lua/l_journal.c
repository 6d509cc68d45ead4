/*
 * l_journal.c - the Lua `journal` module: core.journal, an append-only file
 * for records that must survive a crash (the checkpoint journal).
 *
 *   journal.open(path) -> j | nil, msg, "IO"
 *       opens an existing file for appending (O_APPEND; it is never created
 *       here: the caller writes the first version atomically).
 *   j:append(data)      -> true | nil, msg, "IO"
 *       one write(2) of all of data at the end of the file, so a process
 *       killed at any moment leaves either the whole of it or none of it
 *       (the kernel keeps it even if the process dies right after). Fails
 *       when the file was deleted or replaced since it was opened: the
 *       records would go nowhere.
 *   j:sync()            -> true | nil, msg, "IO"   (fdatasync: on disk)
 *   j:close()           (idempotent; also __gc and __close)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

#define JOURNAL_CLASS "freightliner.journal"

typedef struct journal {
  int fd;
} journal;

static journal *check_open(lua_State *L) {
  journal *j = luaL_checkudata(L, 1, JOURNAL_CLASS);
  luaL_argcheck(L, j->fd >= 0, 1, "the journal is closed");
  return j;
}

static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  journal *j = lua_newuserdatauv(L, sizeof *j, 0);
  j->fd = -1;
  luaL_setmetatable(L, JOURNAL_CLASS);
  j->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (j->fd < 0)
    return fl_lua_failf(L, FL_EIO, "cannot open '%s' for appending: %s", path,
                        strerror(errno));
  return 1;
}

static int m_append(lua_State *L) {
  journal *j = check_open(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  struct stat st;
  if (fstat(j->fd, &st) != 0)
    return fl_lua_failf(L, FL_EIO, "%s", strerror(errno));
  if (st.st_nlink == 0)
    return fl_lua_failf(L, FL_EIO,
                        "the file was deleted or replaced while in use");
  while (len > 0) {
    ssize_t n = write(j->fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return fl_lua_failf(L, FL_EIO, "%s", strerror(errno));
    }
    data += n;
    len -= (size_t)n;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int m_sync(lua_State *L) {
  journal *j = check_open(L);
  if (fdatasync(j->fd) != 0)
    return fl_lua_failf(L, FL_EIO, "%s", strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

static int m_close(lua_State *L) {
  journal *j = luaL_checkudata(L, 1, JOURNAL_CLASS);
  if (j->fd >= 0) {
    close(j->fd);
    j->fd = -1;
  }
  return 0;
}

static int m_tostring(lua_State *L) {
  journal *j = luaL_checkudata(L, 1, JOURNAL_CLASS);
  lua_pushfstring(L, "journal (%s)", j->fd >= 0 ? "open" : "closed");
  return 1;
}

int fl_lua_open_journal(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"append", m_append}, {"sync", m_sync}, {"close", m_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", m_close},
                                  {"__close", m_close},
                                  {"__tostring", m_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
  fl_lua_new_class(L, JOURNAL_CLASS, methods, meta);
  luaL_newlib(L, funcs);
  return 1;
}
