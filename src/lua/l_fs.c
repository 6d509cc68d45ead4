/*
 * l_fs.c - the Lua `fs` module: core.fs, the few file-system and process
 * facts the stdlib needs that plain Lua does not offer.
 *
 *   fs.atomic_write(path, data) -> true | nil, msg, "IO"
 *       temp file in the same directory, write all, fsync, rename over
 *       path, fsync the directory; the temp file never stays behind. A new
 *       file gets mode 0644, an existing one keeps its mode.
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

#include "lua/bindings.h"
#include "lua/lua_util.h"

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* The directory part of path ("." when there is none). */
static void dir_of(const char *path, char *dir, size_t n) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(dir, n, ".");
  else if (slash == path)
    snprintf(dir, n, "/");
  else
    snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  /* some file systems cannot fsync a directory; the rename still stands */
  if (rc != 0 && (errno == EINVAL || errno == EROFS))
    rc = 0;
  close(fd);
  return rc;
}

/* Everything happens in C with no Lua call in between, so no Lua error can
 * leave the temp file or its descriptor behind. */
static fl_code atomic_write(const char *path, const char *data, size_t len,
                            fl_error *err) {
  char tmp[PATH_MAX], dir[PATH_MAX];
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (*base == '\0')
    return fl_error_set(err, FL_EIO, "cannot write '%s': not a file name",
                        path);
  dir_of(path, dir, sizeof dir);
  int n = snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", dir, base);
  if (n < 0 || (size_t)n >= sizeof tmp)
    return fl_error_set(err, FL_EIO, "cannot write '%s': path too long", path);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return fl_error_set(err, FL_EIO, "cannot create a temp file in %s: %s", dir,
                        strerror(errno));
  const char *what = "writing";
  struct stat st;
  mode_t mode = 0644;
  if (stat(path, &st) == 0)
    mode = st.st_mode & 07777;
  if (fchmod(fd, mode) != 0)
    what = "setting the mode of";
  else if (write_all(fd, data, len) != 0)
    what = "writing";
  else if (fsync(fd) != 0)
    what = "syncing";
  else
    what = NULL;
  int saved = errno;
  if (close(fd) != 0 && !what) {
    what = "closing";
    saved = errno;
  }
  if (!what && rename(tmp, path) != 0) {
    what = "renaming the temp file over";
    saved = errno;
  }
  if (what) {
    unlink(tmp);
    return fl_error_set(err, FL_EIO, "%s %s: %s", what, path, strerror(saved));
  }
  if (fsync_dir(dir) != 0)
    return fl_error_set(err, FL_EIO, "syncing directory %s: %s", dir,
                        strerror(errno));
  return FL_OK;
}

static int l_atomic_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  fl_error err;
  if (atomic_write(path, data, len, &err) != FL_OK)
    return fl_lua_fail(L, &err);
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
  char buf[PATH_MAX];
  size_t len = strlen(path);
  luaL_argcheck(L, len > 0, 1, "empty path");
  if (len >= sizeof buf)
    return fl_lua_failf(L, FL_EIO, "cannot create %s: path too long", path);
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char c = *p;
    *p = '\0';
    struct stat st;
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
      return fl_lua_failf(L, FL_EIO, "cannot create directory %s: %s", buf,
                          strerror(errno));
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
      return fl_lua_failf(L, FL_EIO, "cannot create directory %s: %s", buf,
                          "a file of that name exists");
    *p = c;
    if (c == '\0')
      break;
  }
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
