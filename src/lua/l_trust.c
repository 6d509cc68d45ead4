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
 *   trust.start(ep, repo, reference, keyset [, "any" | "all"]) -> job
 *   job:done() -> boolean;  job:result() -> as trust.verify (waits)
 *
 * verify resolves a tag to its digest (one HEAD) and checks the signatures
 * of that digest (src/trust/verify.h), blocking the calling thread for the
 * few requests that takes; start does the same on a thread of its own (the
 * endpoint and key set are anchored in the job until it is collected; its
 * __gc joins the thread). Policy (which keys, when to verify) is Lua's.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
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

/* A tag's digest (one HEAD), then its signatures. Any thread. */
static fl_code run_verify(fl_endpoint *ep, const char *repo, const char *ref,
                          const fl_trust_keys *keys, fl_trust_require require,
                          char digest[FL_DIGEST_STR_MAX], fl_trust_result *res,
                          fl_error *err) {
  memset(res, 0, sizeof *res);
  if (strchr(ref, ':')) {
    if (fl_digest_parse(ref, NULL, err) != FL_OK)
      return FL_EINVALID;
    snprintf(digest, FL_DIGEST_STR_MAX, "%s", ref);
  } else {
    fl_descriptor d;
    fl_code rc = ep->ops->manifest_head(ep, repo, ref, &d, err);
    if (rc != FL_OK)
      return rc;
    snprintf(digest, FL_DIGEST_STR_MAX, "%s", d.digest);
  }
  return fl_trust_verify(ep, repo, digest, keys, require, res, err);
}

static int push_result(lua_State *L, const fl_trust_keys *keys,
                       const char *digest, const fl_trust_result *res) {
  lua_createtable(L, 0, 5);
  fl_lua_setfield_str(L, -1, "digest", digest);
  fl_lua_setfield_int(L, -1, "signatures", (lua_Integer)res->signatures);
  fl_lua_setfield_int(L, -1, "keyless", (lua_Integer)res->keyless);
  fl_lua_setfield_str(L, -1, "where", res->where);
  push_names(L, keys, res->keys);
  lua_setfield(L, -2, "keys");
  return 1;
}

static fl_trust_require check_require(lua_State *L, int idx) {
  static const char *const modes[] = {"any", "all", NULL};
  return luaL_checkoption(L, idx, "any", modes) == 1 ? FL_TRUST_ALL
                                                     : FL_TRUST_ANY;
}

static int l_verify(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *ref = luaL_checkstring(L, 3);
  fl_trust_keys *keys = check_keys(L, 4);
  fl_trust_require require = check_require(L, 5);
  fl_error err;
  char digest[FL_DIGEST_STR_MAX];
  fl_trust_result res;
  if (run_verify(ep, repo, ref, keys, require, digest, &res, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  return push_result(L, keys, digest, &res);
}

/* ---- a verification on its own thread ------------------------------------ */

#define JOB_CLASS "freightliner.trust.job"

typedef struct vjob {
  pthread_t thread;
  int running; /* started and not joined */
  atomic_int done;
  fl_endpoint *ep;     /* anchored in the job's uservalue */
  fl_trust_keys *keys; /* a reference of the job's own */
  fl_trust_require require;
  char *repo, *ref;
  fl_code rc;
  fl_error err;
  fl_trust_result res;
  char digest[FL_DIGEST_STR_MAX];
} vjob;

static void *job_main(void *arg) {
  vjob *j = arg;
  j->rc = run_verify(j->ep, j->repo, j->ref, j->keys, j->require, j->digest,
                     &j->res, &j->err);
  atomic_store(&j->done, 1);
  return NULL;
}

static void job_join(vjob *j) {
  if (j->running) {
    pthread_join(j->thread, NULL);
    j->running = 0;
  }
}

static int job_gc(lua_State *L) {
  vjob *j = luaL_checkudata(L, 1, JOB_CLASS);
  job_join(j);
  fl_trust_keys_free(j->keys);
  j->keys = NULL;
  free(j->repo);
  free(j->ref);
  j->repo = j->ref = NULL;
  return 0;
}

static int job_tostring(lua_State *L) {
  vjob *j = luaL_checkudata(L, 1, JOB_CLASS);
  lua_pushfstring(L, "trust job (%s)",
                  atomic_load(&j->done) ? "done" : "running");
  return 1;
}

static int job_done(lua_State *L) {
  vjob *j = luaL_checkudata(L, 1, JOB_CLASS);
  lua_pushboolean(L, atomic_load(&j->done));
  return 1;
}

/* job:result(): waits for the thread, then as trust.verify. */
static int job_result(lua_State *L) {
  vjob *j = luaL_checkudata(L, 1, JOB_CLASS);
  luaL_argcheck(L, j->keys != NULL, 1, "trust job is closed");
  job_join(j);
  if (j->rc != FL_OK)
    return fl_lua_fail(L, &j->err);
  return push_result(L, j->keys, j->digest, &j->res);
}

/* start(ep, repo, ref, keyset [, "any"|"all"]) -> job: trust.verify on a
 * thread of its own, so the Lua thread goes on scheduling; poll
 * job:done(), then job:result(). */
static int l_start(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *ref = luaL_checkstring(L, 3);
  fl_trust_keys *keys = check_keys(L, 4);
  fl_trust_require require = check_require(L, 5);
  vjob *j = lua_newuserdatauv(L, sizeof *j, 1);
  memset(j, 0, sizeof *j);
  luaL_setmetatable(L, JOB_CLASS);
  /* the endpoint and the key set live at least as long as the job */
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 4);
  lua_rawseti(L, -2, 2);
  lua_setiuservalue(L, -2, 1);
  j->ep = ep;
  j->keys = fl_trust_keys_ref(keys);
  j->require = require;
  j->repo = strdup(repo);
  j->ref = strdup(ref);
  if (!j->repo || !j->ref)
    return fl_lua_failf(L, FL_ENOMEM, "out of memory");
  if (pthread_create(&j->thread, NULL, job_main, j) != 0)
    return fl_lua_failf(L, FL_ENOMEM, "cannot start a thread to verify %s",
                        repo);
  j->running = 1;
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
  static const luaL_Reg job_methods[] = {
      {"done", job_done}, {"result", job_result}, {NULL, NULL}};
  static const luaL_Reg job_meta[] = {{"__gc", job_gc},
                                      {"__close", job_gc},
                                      {"__tostring", job_tostring},
                                      {NULL, NULL}};
  fl_lua_new_class(L, JOB_CLASS, job_methods, job_meta);
  static const luaL_Reg funcs[] = {
      {"keys", l_keys}, {"verify", l_verify}, {"start", l_start}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
