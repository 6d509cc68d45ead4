/*
 * l_fs.c - the Lua `fs` module: core.fs, the few file-system and process
 * facts the stdlib needs that plain Lua does not offer.
 *
 *   fs.atomic_write(path, data) -> true | nil, msg, "IO"
 *       temp file in the same directory, write all, fsync, rename over
 *       path, fsync the directory; the temp file never stays behind. A new
 *       file gets mode 0644, an existing one keeps its mode.
 *       (fl_fs_write_atomic: the one fs layer is src/core/fsutil.c.)
 *   fs.exists(path)             -> false | true, "file"|"directory"|"other"
 *   fs.mkdir_p(path [, mode])   -> true | nil, msg, "IO" (mode 0755)
 *   fs.isatty(fd)               -> boolean (2: is stderr a terminal?)
 *   fs.hostname()               -> string
 *   fs.time()                   -> wall-clock seconds (float, gettimeofday)
 *   fs.random_id()              -> 16 lower-case hex characters
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "lua/bindings.h"
#include "lua/lua_util.h"

/* Every failure of these two is "IO" in Lua (a path too long included). */
static int fail_io(lua_State *L, fl_error *err) {
  if (err->code != FL_ENOMEM)
    err->code = FL_EIO;
  return fl_lua_fail(L, err);
}

static int l_atomic_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  fl_error err;
  if (fl_fs_write_atomic(path, data, len, &err) != FL_OK)
    return fail_io(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_exists(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, 1);
  lua_pushstring(L, S_ISREG(st.st_mode)   ? "file"
                    : S_ISDIR(st.st_mode) ? "directory"
                                          : "other");
  return 2;
}

static int l_mkdir_p(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer mode = luaL_optinteger(L, 2, 0755);
  fl_error err;
  luaL_argcheck(L, *path != '\0', 1, "empty path");
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "not a file mode");
  if (fl_fs_mkdir_p(path, (mode_t)mode, &err) != FL_OK)
    return fail_io(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1, "not a file descriptor");
  lua_pushboolean(L, isatty((int)fd));
  return 1;
}

static int l_hostname(lua_State *L) {
  char name[256];
  if (gethostname(name, sizeof name) != 0)
    snprintf(name, sizeof name, "localhost");
  name[sizeof name - 1] = '\0';
  lua_pushstring(L, name);
  return 1;
}

static int l_time(lua_State *L) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  lua_pushnumber(L, (double)tv.tv_sec + (double)tv.tv_usec / 1e6);
  return 1;
}

static int random_bytes(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    got += (size_t)r;
  }
  if (got == n)
    return 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t r = read(fd, buf, n);
  close(fd);
  return r == (ssize_t)n ? 0 : -1;
}

static int l_random_id(lua_State *L) {
  unsigned char b[8];
  if (random_bytes(b, sizeof b) != 0)
    return luaL_error(L, "cannot read random bytes: %s", strerror(errno));
  char hex[17];
  for (size_t i = 0; i < sizeof b; i++)
    snprintf(hex + 2 * i, 3, "%02x", b[i]);
  lua_pushstring(L, hex);
  return 1;
}

int fl_lua_open_fs(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"atomic_write", l_atomic_write}, {"exists", l_exists},
      {"mkdir_p", l_mkdir_p},           {"isatty", l_isatty},
      {"hostname", l_hostname},         {"time", l_time},
      {"random_id", l_random_id},       {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
