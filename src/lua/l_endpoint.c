/*
 * l_endpoint.c - the Lua `endpoint` module: core.endpoint, image stores.
 *
 *   endpoint.registry{host=, scheme=, tls_verify=, ca_file=, ...} -> ep
 *   endpoint.oci(path [, create])                                  -> ep
 *
 * Both return the same userdata class; its methods are the endpoint
 * operations of src/registry/endpoint.h, one for one, taking repository and
 * reference strings, plus :tags_many(repos [, {concurrency = N}]), which
 * lists many repositories' tags at once on a few short-lived threads that
 * are all joined before it returns. The friendlier object users see
 * (`fl.registry`) is built on these in lua/stdlib/freightliner/registry.lua.
 * Expected failures return nil, message, CODE; misuse raises an argument
 * error. C resources that exist while results are pushed are held by
 * fl_lua_owned boxes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "lua/bindings.h"
#include "lua/lua_util.h"
#include "registry/oci_layout.h"
#include "registry/registry.h"

#define ENDPOINT_CLASS "freightliner.endpoint"
/* Largest blob :blob_get() will return as a string (configs, small files). */
#define BLOB_STRING_MAX (64 * 1024 * 1024)

typedef struct lendpoint {
  fl_endpoint *ep;
} lendpoint;

fl_endpoint *fl_lua_check_endpoint(lua_State *L, int idx) {
  lendpoint *le = luaL_checkudata(L, idx, ENDPOINT_CLASS);
  luaL_argcheck(L, le->ep != NULL, idx, "endpoint is closed");
  return le->ep;
}

void fl_lua_push_endpoint(lua_State *L, fl_endpoint *ep) {
  lendpoint *le = lua_newuserdatauv(L, sizeof *le, 0);
  le->ep = ep;
  luaL_setmetatable(L, ENDPOINT_CLASS);
}

/* ---- constructors -------------------------------------------------------- */

static const char *opt_str(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "registry option '%s' must be a string", key);
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays alive in the options table */
  return s;
}

static double opt_num(lua_State *L, int t, const char *key, double dflt) {
  lua_getfield(L, t, key);
  double v = dflt;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1))
      luaL_error(L, "registry option '%s' must be a number", key);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* A count option: an integer >= 0 (0: the default). */
static size_t opt_count(lua_State *L, int t, const char *key) {
  double v = opt_num(L, t, key, 0);
  if (v < 0 || v != (double)(lua_Integer)v)
    luaL_error(L, "registry option '%s' must be an integer >= 0", key);
  return (size_t)v;
}

static int opt_bool(lua_State *L, int t, const char *key, int dflt) {
  lua_getfield(L, t, key);
  int v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

#define REALMS_MAX 16

/* opts.auth_realms: a list of origins, as a NULL-terminated array kept in a
 * userdata on the stack (the strings stay in the options table). */
static const char *const *opt_realms(lua_State *L, int t) {
  lua_getfield(L, t, "auth_realms");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "registry option 'auth_realms' must be a list of origins");
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  if (n > REALMS_MAX)
    luaL_error(L, "registry option 'auth_realms' lists over %d origins",
               REALMS_MAX);
  const char **list =
      lua_newuserdatauv(L, sizeof *list * (size_t)(n + 1), 0); /* stays */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    char o[FL_ORIGIN_MAX];
    if (lua_type(L, -1) != LUA_TSTRING ||
        !fl_origin_of(lua_tostring(L, -1), o, sizeof o))
      luaL_error(L,
                 "registry option 'auth_realms': entry %d is not an "
                 "origin like \"https://auth.example.com\"",
                 (int)i);
    list[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  list[n] = NULL;
  lua_remove(L, -2); /* the list table: the strings stay in opts */
  return list;
}

static int l_registry(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  fl_registry_config cfg;
  memset(&cfg, 0, sizeof cfg);
  fl_http_config *h = &cfg.http;
  h->host = opt_str(L, 1, "host");
  luaL_argcheck(L, h->host != NULL, 1, "registry needs a host");
  const char *scheme = opt_str(L, 1, "scheme");
  if (!scheme || strcmp(scheme, "auto") == 0)
    h->scheme = FL_SCHEME_AUTO;
  else if (strcmp(scheme, "https") == 0)
    h->scheme = FL_SCHEME_HTTPS;
  else if (strcmp(scheme, "http") == 0)
    h->scheme = FL_SCHEME_HTTP;
  else
    return luaL_argerror(L, 1, "scheme must be auto, https or http");
  h->tls_verify = opt_bool(L, 1, "tls_verify", 1);
  h->ca_file = opt_str(L, 1, "ca_file");
  h->client_cert = opt_str(L, 1, "client_cert");
  h->client_key = opt_str(L, 1, "client_key");
  h->pinned_pubkey = opt_str(L, 1, "pinned_pubkey");
  h->max_attempts = (int)opt_num(L, 1, "max_attempts", 0);
  h->retry_base_ms = opt_num(L, 1, "retry_base_ms", 0);
  h->retry_max_ms = opt_num(L, 1, "retry_max_ms", 0);
  h->retry_after_max_s = (int)opt_num(L, 1, "retry_after_max", 0);
  h->request_timeout_s = (int)opt_num(L, 1, "request_timeout", 0);
  h->attempt_timeout_s = (int)opt_num(L, 1, "attempt_timeout", 0);
  h->max_concurrency = (int)opt_num(L, 1, "max_concurrency", 0);
  h->requests_per_second = opt_num(L, 1, "requests_per_second", 0);
  h->breaker_threshold = (int)opt_num(L, 1, "breaker_threshold", 0);
  h->breaker_cooldown_s = (int)opt_num(L, 1, "breaker_cooldown", 0);
  h->connect_timeout_ms = (long)opt_num(L, 1, "connect_timeout_ms", 0);
  h->low_speed_time_s = (long)opt_num(L, 1, "low_speed_time", 0);
  h->creds.username = opt_str(L, 1, "username");
  h->creds.password_env = opt_str(L, 1, "password_env");
  h->creds.password_file = opt_str(L, 1, "password_file");
  h->creds.credential_helper = opt_str(L, 1, "credential_helper");
  cfg.chunk_size = (uint64_t)opt_num(L, 1, "chunk_size", 0);
  cfg.resume_chunk_size = (uint64_t)opt_num(L, 1, "resume_chunk_size",
                                            (double)FL_RESUME_CHUNK_DEFAULT);
  cfg.page_size = (size_t)opt_num(L, 1, "page_size", 0);
  cfg.max_list_pages = opt_count(L, 1, "max_list_pages");
  cfg.max_list_entries = opt_count(L, 1, "max_list_entries");
  h->realm_strict = opt_bool(L, 1, "auth_realm_strict", 0);
  h->realm_origins = opt_realms(L, 1);
  lua_getfield(L, 1, "password");
  if (!lua_isnil(L, -1))
    return luaL_argerror(L, 1,
                         "a plain-text 'password' is not accepted; use "
                         "password_env, password_file or "
                         "credential_helper");
  lua_pop(L, 1);

  fl_endpoint *ep;
  fl_error err;
  if (fl_registry_open(&cfg, &ep, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  fl_lua_push_endpoint(L, ep);
  return 1;
}

static int l_oci(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int create = lua_toboolean(L, 2);
  fl_endpoint *ep;
  fl_error err;
  if (fl_oci_layout_open(path, create, &ep, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  fl_lua_push_endpoint(L, ep);
  return 1;
}

/* ---- methods ------------------------------------------------------------- */

static int push_ok(lua_State *L, fl_code rc, const fl_error *err) {
  if (rc != FL_OK)
    return fl_lua_fail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int m_ping(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  fl_error err;
  return push_ok(L, ep->ops->ping(ep, &err), &err);
}

static void strlist_release(void *p) {
  fl_strlist_clear(p);
  free(p);
}

/* Push the strings of l as a Lua list. */
static void push_strings(lua_State *L, const fl_strlist *l) {
  lua_createtable(L, (int)l->count, 0);
  for (size_t i = 0; i < l->count; i++) {
    lua_pushstring(L, l->items[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int push_strlist(lua_State *L, fl_lua_owned *box) {
  push_strings(L, box->ptr);
  fl_lua_owned_release(box);
  return 1;
}

static fl_lua_owned *new_strlist(lua_State *L) {
  fl_lua_owned *box = fl_lua_push_owned(L, strlist_release);
  box->ptr = calloc(1, sizeof(fl_strlist));
  if (!box->ptr)
    luaL_error(L, "out of memory");
  return box;
}

static int m_catalog(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, max >= 0, 2, "limit must be >= 0");
  fl_lua_owned *box = new_strlist(L);
  fl_error err;
  if (ep->ops->catalog(ep, (size_t)max, box->ptr, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  return push_strlist(L, box);
}

static int m_tags(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  fl_lua_owned *box = new_strlist(L);
  fl_error err;
  if (ep->ops->tags(ep, repo, box->ptr, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  return push_strlist(L, box);
}

/* ---- tags_many: the tags of many repositories, listed concurrently ------ */

#define TAGS_MANY_DEFAULT 8
#define TAGS_MANY_MAX 64

/* The work of one :tags_many() call, owned by an fl_lua_owned box so that no
 * Lua error can leak it. The names are copied out of Lua before any thread
 * starts; worker threads never touch the lua_State. A worker takes the next
 * index from `next` (the only shared mutable field, an atomic) and writes
 * only slot i of lists/errs/codes; the calling thread reads the slots after
 * joining every worker. */
typedef struct tags_work {
  fl_endpoint *ep;
  fl_cancel *cancel; /* the Lua thread's current token, for the workers */
  size_t count;      /* slots allocated in repos, lists, errs and codes */
  char **repos;      /* unique names, in the order first given */
  fl_strlist *lists;
  fl_error *errs;
  fl_code *codes;
  atomic_size_t next;
} tags_work;

static void tags_work_release(void *p) {
  tags_work *w = p;
  for (size_t i = 0; i < w->count; i++) {
    free(w->repos[i]);
    fl_strlist_clear(&w->lists[i]);
  }
  free(w->repos);
  free(w->lists);
  free(w->errs);
  free(w->codes);
  free(w);
}

static void *tags_worker(void *arg) {
  tags_work *w = arg;
  fl_cancel_set_current(w->cancel); /* stop with the Lua thread's work */
  for (;;) {
    size_t i = atomic_fetch_add(&w->next, 1);
    if (i >= w->count)
      return NULL;
    w->codes[i] =
        w->ep->ops->tags(w->ep, w->repos[i], &w->lists[i], &w->errs[i]);
  }
}

/* Run the work on up to `threads` threads and join them all. If no thread
 * can be started the calling thread does the work itself. */
static void tags_work_run(tags_work *w, size_t threads) {
  pthread_t tid[TAGS_MANY_MAX];
  size_t started = 0;
  while (started < threads &&
         pthread_create(&tid[started], NULL, tags_worker, w) == 0)
    started++;
  if (started == 0)
    tags_worker(w);
  for (size_t i = 0; i < started; i++)
    pthread_join(tid[i], NULL);
}

static size_t tags_many_concurrency(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx))
    return TAGS_MANY_DEFAULT;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "concurrency");
  lua_Integer n = TAGS_MANY_DEFAULT;
  if (!lua_isnil(L, -1)) {
    int isint = 0;
    n = lua_tointegerx(L, -1, &isint);
    luaL_argcheck(L, isint && lua_type(L, -1) == LUA_TNUMBER && n >= 1, idx,
                  "concurrency must be an integer >= 1");
  }
  lua_pop(L, 1);
  return n > TAGS_MANY_MAX ? TAGS_MANY_MAX : (size_t)n;
}

/* ep:tags_many(repos [, {concurrency = N}]) -> tags, errors
 *   tags[repo] = { tag, ... } (as :tags(repo) returns them)
 *   errors[repo] = { message = ..., code = "NOT_FOUND" | ... }
 * Every repository is in exactly one of the two tables. */
static int m_tags_many(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t threads = tags_many_concurrency(L, 3);
  lua_settop(L, 2);

  /* Validate and de-duplicate the names in Lua first (stack: 3 = unique
   * names in order, 4 = set of names seen); nothing is held in C yet. */
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, 0, (int)n);
  size_t count = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
      return luaL_argerror(
          L, 2,
          lua_pushfstring(L, "repository %d must be a string, not a %s", (int)i,
                          luaL_typename(L, -1)));
    const char *name = lua_tolstring(L, -1, &len);
    if (strlen(name) != len)
      return luaL_argerror(
          L, 2,
          lua_pushfstring(L, "repository %d contains a NUL byte", (int)i));
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 4) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushboolean(L, 1);
      lua_rawset(L, 4);
      lua_rawseti(L, 3, (lua_Integer)++count);
    } else {
      lua_pop(L, 2);
    }
  }

  fl_lua_owned *box = fl_lua_push_owned(L, tags_work_release); /* 5 */
  tags_work *w = calloc(1, sizeof *w);
  if (!w)
    return luaL_error(L, "out of memory");
  box->ptr = w;
  w->ep = ep;
  w->cancel = fl_cancel_current();
  atomic_init(&w->next, 0);
  if (count > 0) {
    w->repos = calloc(count, sizeof *w->repos);
    w->lists = calloc(count, sizeof *w->lists);
    w->errs = calloc(count, sizeof *w->errs);
    w->codes = calloc(count, sizeof *w->codes);
    if (!w->repos || !w->lists || !w->errs || !w->codes)
      return luaL_error(L, "out of memory");
    w->count = count;
  }
  for (size_t i = 0; i < count; i++) {
    lua_rawgeti(L, 3, (lua_Integer)i + 1);
    w->repos[i] = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!w->repos[i])
      return luaL_error(L, "out of memory");
  }

  /* No Lua from here until every worker is joined. */
  if (threads > count)
    threads = count;
  if (count > 0)
    tags_work_run(w, threads);

  lua_createtable(L, 0, (int)count); /* 6: tags */
  lua_createtable(L, 0, 0);          /* 7: errors */
  for (size_t i = 0; i < count; i++) {
    if (w->codes[i] == FL_OK) {
      push_strings(L, &w->lists[i]);
      lua_setfield(L, 6, w->repos[i]);
    } else {
      const fl_error *e = &w->errs[i];
      lua_createtable(L, 0, 2);
      fl_lua_setfield_str(L, -1, "message", e->msg);
      fl_lua_setfield_str(
          L, -1, "code",
          fl_code_name(e->code != FL_OK ? e->code : w->codes[i]));
      lua_setfield(L, 7, w->repos[i]);
    }
    fl_strlist_clear(&w->lists[i]);
  }
  fl_lua_owned_release(box);
  return 2;
}

static void manifest_release(void *p) {
  fl_manifest_clear(p);
  free(p);
}

/* {data=, digest=, media_type=, size=} from a manifest held by a box. */
static int push_manifest(lua_State *L, fl_lua_owned *box) {
  fl_manifest *m = box->ptr;
  lua_createtable(L, 0, 4);
  lua_pushlstring(L, m->data ? m->data : "", m->len);
  lua_setfield(L, -2, "data");
  fl_lua_setfield_str(L, -1, "digest", m->digest);
  fl_lua_setfield_str(L, -1, "media_type", m->media_type);
  fl_lua_setfield_int(L, -1, "size", (lua_Integer)m->len);
  fl_lua_owned_release(box);
  return 1;
}

static fl_lua_owned *new_manifest(lua_State *L) {
  fl_lua_owned *box = fl_lua_push_owned(L, manifest_release);
  box->ptr = calloc(1, sizeof(fl_manifest));
  if (!box->ptr)
    luaL_error(L, "out of memory");
  return box;
}

static int m_manifest_get(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *ref = luaL_checkstring(L, 3);
  fl_lua_owned *box = new_manifest(L);
  fl_error err;
  if (ep->ops->manifest_get(ep, repo, ref, box->ptr, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  return push_manifest(L, box);
}

static int m_manifest_head(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *ref = luaL_checkstring(L, 3);
  fl_descriptor d;
  fl_error err;
  if (ep->ops->manifest_head(ep, repo, ref, &d, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_createtable(L, 0, 3);
  fl_lua_setfield_str(L, -1, "digest", d.digest);
  fl_lua_setfield_str(L, -1, "media_type", d.media_type);
  fl_lua_setfield_int(L, -1, "size", (lua_Integer)d.size);
  return 1;
}

static int m_manifest_put(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *ref = luaL_checkstring(L, 3);
  size_t len;
  const char *data = luaL_checklstring(L, 4, &len);
  const char *mt = luaL_checkstring(L, 5);
  fl_error err;
  return push_ok(L, ep->ops->manifest_put(ep, repo, ref, data, len, mt, &err),
                 &err);
}

static int m_manifest_delete(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *ref = luaL_checkstring(L, 3);
  fl_error err;
  return push_ok(L, ep->ops->manifest_delete(ep, repo, ref, &err), &err);
}

static int m_blob_exists(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *digest = luaL_checkstring(L, 3);
  uint64_t size = 0;
  fl_error err;
  fl_code rc = ep->ops->blob_exists(ep, repo, digest, &size, &err);
  if (rc == FL_ENOT_FOUND) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (rc != FL_OK)
    return fl_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  lua_pushinteger(L, (lua_Integer)size);
  return 2;
}

/* Growing buffer sink for :blob_get() (bounded). */
static int m_blob_get(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *digest = luaL_checkstring(L, 3);
  fl_lua_owned *box = fl_lua_push_owned(L, free);
  char *data;
  size_t len;
  fl_error err;
  fl_code rc = fl_endpoint_blob_read(ep, repo, digest, BLOB_STRING_MAX, &data,
                                     &len, &err);
  box->ptr = data; /* NULL on failure */
  if (rc == FL_ETOO_LARGE)
    return fl_lua_failf(L, rc,
                        "%s: too large to return as a string (copy it with "
                        "fl.copy instead)",
                        err.msg);
  if (rc != FL_OK)
    return fl_lua_fail(L, &err);
  lua_pushlstring(L, data, len);
  fl_lua_owned_release(box);
  return 1;
}

/* Source over a Lua string (kept alive on the stack during the call). */
typedef struct strsource {
  const char *data;
  size_t len, at;
} strsource;

static long long str_read(void *ud, void *buf, size_t len, fl_error *err) {
  (void)err;
  strsource *s = ud;
  size_t n = s->len - s->at < len ? s->len - s->at : len;
  memcpy(buf, s->data + s->at, n);
  s->at += n;
  return (long long)n;
}

static fl_code str_rewind(void *ud, fl_error *err) {
  (void)err;
  ((strsource *)ud)->at = 0;
  return FL_OK;
}

static int m_blob_put(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  size_t len;
  const char *data = luaL_checklstring(L, 3, &len);
  const char *digest = luaL_optstring(L, 4, NULL);
  char computed[FL_DIGEST_STR_MAX];
  if (!digest) {
    if (fl_digest_buffer(FL_SHA256, data, len, computed) != FL_OK)
      return luaL_error(L, "out of memory");
    digest = computed;
  }
  strsource s = {data, len, 0};
  fl_source src = {str_read, str_rewind, &s, NULL};
  fl_error err;
  if (ep->ops->blob_put(ep, repo, digest, len, &src, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_pushstring(L, digest);
  return 1;
}

static int m_blob_mount(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *from = luaL_checkstring(L, 3);
  const char *digest = luaL_checkstring(L, 4);
  fl_error err;
  return push_ok(L, ep->ops->blob_mount(ep, repo, from, digest, &err), &err);
}

static int m_blob_delete(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *digest = luaL_checkstring(L, 3);
  fl_error err;
  return push_ok(L, ep->ops->blob_delete(ep, repo, digest, &err), &err);
}

static int m_referrers(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  const char *digest = luaL_checkstring(L, 3);
  const char *type = luaL_optstring(L, 4, NULL);
  fl_lua_owned *box = new_manifest(L);
  fl_error err;
  if (ep->ops->referrers(ep, repo, digest, type, box->ptr, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  return push_manifest(L, box);
}

static int m_stats(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  fl_http *http = fl_registry_http(ep);
  lua_createtable(L, 0, 6);
  fl_lua_setfield_str(L, -1, "kind", ep->ops->kind);
  if (http) {
    fl_http_stats s;
    fl_http_get_stats(http, &s);
    fl_lua_setfield_int(L, -1, "requests", (lua_Integer)s.requests);
    fl_lua_setfield_int(L, -1, "retries", (lua_Integer)s.retries);
    fl_lua_setfield_int(L, -1, "reauths", (lua_Integer)s.reauths);
    if (s.ratelimit_limit >= 0)
      fl_lua_setfield_int(L, -1, "ratelimit_limit", s.ratelimit_limit);
    if (s.ratelimit_remaining >= 0)
      fl_lua_setfield_int(L, -1, "ratelimit_remaining", s.ratelimit_remaining);
    if (s.ratelimit_window >= 0)
      fl_lua_setfield_int(L, -1, "ratelimit_window", s.ratelimit_window);
    lua_pushboolean(L, s.breaker_open);
    lua_setfield(L, -2, "breaker_open");
    fl_lua_setfield_str(L, -1, "base_url", fl_http_base(http));
  }
  return 1;
}

static int m_kind(lua_State *L) {
  lua_pushstring(L, fl_lua_check_endpoint(L, 1)->ops->kind);
  return 1;
}

static int m_describe(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  lua_pushstring(L, ep->ops->describe(ep));
  return 1;
}

static int m_close(lua_State *L) {
  lendpoint *le = luaL_checkudata(L, 1, ENDPOINT_CLASS);
  fl_endpoint_unref(le->ep); /* Lua's reference; running jobs keep theirs */
  le->ep = NULL;
  return 0;
}

static int m_tostring(lua_State *L) {
  lendpoint *le = luaL_checkudata(L, 1, ENDPOINT_CLASS);
  if (le->ep)
    lua_pushfstring(L, "endpoint (%s)", le->ep->ops->describe(le->ep));
  else
    lua_pushliteral(L, "endpoint (closed)");
  return 1;
}

int fl_lua_open_endpoint(lua_State *L) {
  static const luaL_Reg methods[] = {{"ping", m_ping},
                                     {"catalog", m_catalog},
                                     {"tags", m_tags},
                                     {"tags_many", m_tags_many},
                                     {"manifest_get", m_manifest_get},
                                     {"manifest_head", m_manifest_head},
                                     {"manifest_put", m_manifest_put},
                                     {"manifest_delete", m_manifest_delete},
                                     {"blob_exists", m_blob_exists},
                                     {"blob_get", m_blob_get},
                                     {"blob_put", m_blob_put},
                                     {"blob_mount", m_blob_mount},
                                     {"blob_delete", m_blob_delete},
                                     {"referrers", m_referrers},
                                     {"stats", m_stats},
                                     {"kind", m_kind},
                                     {"describe", m_describe},
                                     {"close", m_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", m_close},
                                  {"__close", m_close},
                                  {"__tostring", m_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"registry", l_registry}, {"oci", l_oci}, {NULL, NULL}};
  fl_lua_new_class(L, ENDPOINT_CLASS, methods, meta);
  luaL_newlib(L, funcs);
  return 1;
}
