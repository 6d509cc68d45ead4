/*
 * l_archive.c - the Lua `archive` module: core.archive, image archives.
 *
 *   archive.open("oci" | "docker", path, "r" | "w") -> ep | nil, msg, CODE
 *   archive.finish(ep)                               -> true | nil, msg, CODE
 *   archive.member(ep, name)                         -> string | nil, msg, CODE
 *
 * open returns the same endpoint userdata as core.endpoint (see
 * src/registry/archive.h for what reading and writing do); finish writes
 * the archive file from what was copied into an endpoint opened "w".
 */
#include <stdlib.h>
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"
#include "registry/archive.h"

static int l_open(lua_State *L) {
  static const char *const kinds[] = {"oci", "docker", NULL};
  static const char *const modes[] = {"r", "w", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  const char *path = luaL_checkstring(L, 2);
  int write = luaL_checkoption(L, 3, "r", modes);
  fl_endpoint *ep;
  fl_error err;
  if (fl_archive_open(kind ? FL_ARCHIVE_DOCKER : FL_ARCHIVE_OCI, path, write,
                      &ep, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  fl_lua_push_endpoint(L, ep);
  return 1;
}

/* member(ep, name) -> string: a file an export put in the archive. */
static int l_member(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *name = luaL_checkstring(L, 2);
  /* the box owns the buffer from the start, so no error can leak it */
  fl_lua_owned *box = fl_lua_push_owned(L, free);
  fl_error err;
  char *data;
  size_t len;
  fl_code rc =
      fl_archive_read_member(ep, name, 64 * 1024 * 1024, &data, &len, &err);
  box->ptr = data;
  if (rc != FL_OK)
    return fl_lua_fail(L, &err);
  lua_pushlstring(L, data, len);
  fl_lua_owned_release(box);
  return 1;
}

static int l_finish(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  fl_error err;
  if (fl_archive_finish(ep, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

int fl_lua_open_archive(lua_State *L) {
  static const luaL_Reg funcs[] = {{"open", l_open},
                                   {"finish", l_finish},
                                   {"member", l_member},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
