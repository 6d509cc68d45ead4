/*
 * l_trust.c - the Lua `trust` module: core.trust, cosign signature checks.
 *
 *   trust.keys{"cosign.pub", "-----BEGIN PUBLIC KEY-----...", ...}
 *       -> keyset | nil, message, CODE    (file names or PEM text)
 *   keyset:count() -> n;  keyset:names() -> { "cosign.pub", ... }
 *   trust.verify(ep, repo, reference, keyset [, "any" | "all"])
 *       -> { digest =, signatures =, keys = { names }, keyless =, where = }
 *        | nil, message, CODE ("UNVERIFIED" when refused)
 *
 * verify resolves a tag to its digest (one HEAD) and checks the signatures
 * of that digest (src/trust/verify.h); it blocks the calling thread for the
 * few requests that takes. Policy (which keys, when to verify) is Lua's.
 */
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"
#include "trust/verify.h"

#define KEYS_CLASS "freightliner.trust.keys"

typedef struct lkeys {
  fl_trust_keys *keys;
} lkeys;

static fl_trust_keys *check_keys(lua_State *L, int idx) {
  lkeys *lk = luaL_checkudata(L, idx, KEYS_CLASS);
  luaL_argcheck(L, lk->keys != NULL, idx, "key set is closed");
  return lk->keys;
}

static int keys_close(lua_State *L) {
  lkeys *lk = luaL_checkudata(L, 1, KEYS_CLASS);
  fl_trust_keys_free(lk->keys);
  lk->keys = NULL;
  return 0;
}

static int keys_tostring(lua_State *L) {
  lkeys *lk = luaL_checkudata(L, 1, KEYS_CLASS);
  if (lk->keys)
    lua_pushfstring(L, "trust keys (%d)", (int)fl_trust_keys_count(lk->keys));
  else
    lua_pushliteral(L, "trust keys (closed)");
  return 1;
}

static int keys_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)fl_trust_keys_count(check_keys(L, 1)));
  return 1;
}

static void push_names(lua_State *L, const fl_trust_keys *k,
                       unsigned long long mask) {
  lua_newtable(L);
  int n = 0;
  for (size_t i = 0; i < fl_trust_keys_count(k); i++)
    if (mask & (1ull << i)) {
      lua_pushstring(L, fl_trust_key_name(k, i));
      lua_rawseti(L, -2, ++n);
    }
}

static int keys_names(lua_State *L) {
  fl_trust_keys *k = check_keys(L, 1);
  push_names(L, k, ~0ull);
  return 1;
}

/* keys(list): the key set userdata is pushed (and owns the keys) before
 * anything can fail, so an error never leaks it. */
static int l_keys(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 1, 1, "give at least one public key");
  luaL_argcheck(L, n <= FL_TRUST_KEYS_MAX, 1, "too many keys (at most 64)");
  lkeys *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->keys = NULL;
  luaL_setmetatable(L, KEYS_CLASS);
  lk->keys = fl_trust_keys_new();
  if (!lk->keys)
    return fl_lua_failf(L, FL_ENOMEM, "out of memory");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (!s || lua_type(L, -1) != LUA_TSTRING)
      return luaL_argerror(L, 1, "keys must be file names or PEM strings");
    fl_error err;
    fl_code rc =
        strstr(s, "-----BEGIN ")
            ? fl_trust_keys_add_pem(lk->keys, "(PEM text)", s, len, &err)
            : fl_trust_keys_add_file(lk->keys, s, &err);
    lua_pop(L, 1);
    if (rc != FL_OK)
      return fl_lua_fail(L, &err);
  }
  return 1;
}

static int l_verify(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *ref = luaL_checkstring(L, 3);
  fl_trust_keys *keys = check_keys(L, 4);
  static const char *const modes[] = {"any", "all", NULL};
  fl_trust_require require =
      luaL_checkoption(L, 5, "any", modes) == 1 ? FL_TRUST_ALL : FL_TRUST_ANY;
  fl_error err;
  char digest[FL_DIGEST_STR_MAX];
  if (strchr(ref, ':')) {
    if (fl_digest_parse(ref, NULL, &err) != FL_OK)
      return fl_lua_fail(L, &err);
    snprintf(digest, sizeof digest, "%s", ref);
  } else {
    fl_descriptor d;
    if (ep->ops->manifest_head(ep, repo, ref, &d, &err) != FL_OK)
      return fl_lua_fail(L, &err);
    snprintf(digest, sizeof digest, "%s", d.digest);
  }
  fl_trust_result res;
  if (fl_trust_verify(ep, repo, digest, keys, require, &res, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_createtable(L, 0, 5);
  fl_lua_setfield_str(L, -1, "digest", digest);
  fl_lua_setfield_int(L, -1, "signatures", (lua_Integer)res.signatures);
  fl_lua_setfield_int(L, -1, "keyless", (lua_Integer)res.keyless);
  fl_lua_setfield_str(L, -1, "where", res.where);
  push_names(L, keys, res.keys);
  lua_setfield(L, -2, "keys");
  return 1;
}

int fl_lua_open_trust(lua_State *L) {
  static const luaL_Reg methods[] = {{"count", keys_count},
                                     {"names", keys_names},
                                     {"close", keys_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", keys_close},
                                  {"__close", keys_close},
                                  {"__tostring", keys_tostring},
                                  {NULL, NULL}};
  fl_lua_new_class(L, KEYS_CLASS, methods, meta);
  static const luaL_Reg funcs[] = {
      {"keys", l_keys}, {"verify", l_verify}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
