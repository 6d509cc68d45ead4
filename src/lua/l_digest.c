/*
 * l_digest.c - the Lua `digest` module: core.digest.
 *
 *   digest.sha256(s), digest.sha512(s)    -> "sha256:<hex>"
 *   digest.new([alg])                      -> hasher (:update(s), :final())
 *   digest.file(path [, alg])              -> digest, size | nil, msg, CODE
 *   digest.parse(s)                        -> {algorithm=, hex=} | nil, msg, CODE
 */
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

#define HASHER_CLASS "freightliner.hasher"

typedef struct lhasher {
  fl_hasher *h;
} lhasher;

static fl_digest_alg check_alg(lua_State *L, int arg) {
  size_t len;
  const char *name = luaL_optlstring(L, arg, "sha256", &len);
  fl_digest_alg alg;
  if (fl_digest_alg_from_name(name, len, &alg) != FL_OK)
    luaL_argerror(L, arg,
                  lua_pushfstring(L,
                                  "unsupported digest algorithm '%s' "
                                  "(supported: sha256, sha512)",
                                  name));
  return alg;
}

static int push_buffer_digest(lua_State *L, fl_digest_alg alg) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char out[FL_DIGEST_STR_MAX];
  if (fl_digest_buffer(alg, s, len, out) != FL_OK)
    return luaL_error(L, "out of memory computing a digest");
  lua_pushstring(L, out);
  return 1;
}

static int l_sha256(lua_State *L) { return push_buffer_digest(L, FL_SHA256); }
static int l_sha512(lua_State *L) { return push_buffer_digest(L, FL_SHA512); }

static int l_new(lua_State *L) {
  fl_digest_alg alg = check_alg(L, 1);
  lhasher *lh = lua_newuserdatauv(L, sizeof *lh, 0);
  lh->h = NULL;
  luaL_setmetatable(L, HASHER_CLASS);
  lh->h = fl_hasher_new(alg);
  if (!lh->h)
    return luaL_error(L, "out of memory creating a hasher");
  return 1;
}

static lhasher *check_hasher(lua_State *L) {
  lhasher *lh = luaL_checkudata(L, 1, HASHER_CLASS);
  luaL_argcheck(L, lh->h != NULL, 1, "hasher is closed");
  return lh;
}

static int l_update(lua_State *L) {
  lhasher *lh = check_hasher(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (fl_hasher_update(lh->h, s, len) != FL_OK)
    return luaL_error(L, "hasher:update() after :final()");
  lua_settop(L, 1);
  return 1;
}

static int l_final(lua_State *L) {
  lhasher *lh = check_hasher(L);
  char out[FL_DIGEST_STR_MAX];
  if (fl_hasher_final(lh->h, out) != FL_OK)
    return luaL_error(L, "hasher:final() called twice");
  lua_pushstring(L, out);
  return 1;
}

static int l_reset(lua_State *L) {
  lhasher *lh = check_hasher(L);
  fl_hasher_reset(lh->h);
  lua_settop(L, 1);
  return 1;
}

static int l_hasher_close(lua_State *L) {
  lhasher *lh = luaL_checkudata(L, 1, HASHER_CLASS);
  fl_hasher_free(lh->h);
  lh->h = NULL;
  return 0;
}

static int l_hasher_tostring(lua_State *L) {
  lhasher *lh = luaL_checkudata(L, 1, HASHER_CLASS);
  lua_pushfstring(L, "hasher (%s)", lh->h ? "open" : "closed");
  return 1;
}

static int l_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  fl_digest_alg alg = check_alg(L, 2);
  char out[FL_DIGEST_STR_MAX];
  uint64_t size = 0;
  fl_error err;
  if (fl_digest_file(alg, path, out, &size, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_pushstring(L, out);
  lua_pushinteger(L, (lua_Integer)size);
  return 2;
}

static int l_parse(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  fl_digest_alg alg;
  fl_error err;
  if (fl_digest_parse(s, &alg, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_createtable(L, 0, 2);
  fl_lua_setfield_str(L, -1, "algorithm", fl_digest_alg_name(alg));
  fl_lua_setfield_str(L, -1, "hex", strchr(s, ':') + 1);
  return 1;
}

int fl_lua_open_digest(lua_State *L) {
  static const luaL_Reg methods[] = {{"update", l_update},
                                     {"final", l_final},
                                     {"reset", l_reset},
                                     {"close", l_hasher_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_hasher_close},
                                  {"__close", l_hasher_close},
                                  {"__tostring", l_hasher_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"sha256", l_sha256}, {"sha512", l_sha512},
                                   {"new", l_new},       {"file", l_file},
                                   {"parse", l_parse},   {NULL, NULL}};
  fl_lua_new_class(L, HASHER_CLASS, methods, meta);
  luaL_newlib(L, funcs);
  return 1;
}
