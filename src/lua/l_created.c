/*
 * l_created.c - the Lua `created` module: core.created, the creation times
 * of many images of one repository, looked up concurrently (for tag rules
 * with latest_by: created).
 *
 *   created.many(ep, repo, refs [, {concurrency = N}]) -> times, errors
 *     times[ref]  = the `created` string of the image's config
 *     errors[ref] = "message" for each ref that has none or failed
 *
 * Per ref: GET the manifest; for an index, GET its first child; GET the
 * config blob (at most CONFIG_MAX bytes, checked against its digest) and
 * read its `created`. That is two requests for an image and three for an
 * index. The refs are copied out of Lua first; worker threads (at most
 * CREATED_MAX) never touch the lua_State and are all joined before any
 * result is pushed. State of one call is owned by an fl_lua_owned box.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"
#include "registry/endpoint.h"

#define CREATED_DEFAULT 8
#define CREATED_MAX 32
#define CONFIG_MAX (4 * 1024 * 1024)
#define CREATED_STR_MAX 64

typedef struct created_work {
  fl_endpoint *ep;
  char *repo;
  size_t count;
  char **refs;
  char (*times)[CREATED_STR_MAX]; /* "" when the lookup failed */
  fl_error *errs;
  atomic_size_t next;
} created_work;

static void work_release(void *p) {
  created_work *w = p;
  for (size_t i = 0; i < w->count; i++)
    free(w->refs[i]);
  free(w->refs);
  free(w->times);
  free(w->errs);
  free(w->repo);
  free(w);
}

/* A string member of a JSON object, or NULL. */
static const char *str_at(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The digest of a manifest's config (out: FL_DIGEST_STR_MAX bytes), following
 * an index to its first child. */
static fl_code config_digest(fl_endpoint *ep, const char *repo, const char *ref,
                             char *out, fl_error *err) {
  char next[FL_DIGEST_STR_MAX];
  for (int depth = 0; depth < 2; depth++) {
    fl_manifest m = {0};
    fl_code rc = ep->ops->manifest_get(ep, repo, ref, &m, err);
    if (rc != FL_OK)
      return rc;
    json_t *doc = json_loadb(m.data ? m.data : "", m.len, 0, NULL);
    fl_manifest_clear(&m);
    if (!json_is_object(doc)) {
      json_decref(doc);
      return fl_error_set(err, FL_EINVALID, "manifest is not a JSON object");
    }
    json_t *children = json_object_get(doc, "manifests");
    const char *d = NULL;
    if (json_is_array(children)) {
      d = str_at(json_array_get(children, 0), "digest");
      if (d == NULL || strlen(d) >= sizeof next) {
        json_decref(doc);
        return fl_error_set(err, FL_EINVALID, "index has no first child");
      }
      strcpy(next, d);
      json_decref(doc);
      ref = next;
      continue;
    }
    d = str_at(json_object_get(doc, "config"), "digest");
    if (d == NULL || strlen(d) >= FL_DIGEST_STR_MAX) {
      json_decref(doc);
      return fl_error_set(err, FL_EINVALID, "manifest has no config");
    }
    strcpy(out, d);
    json_decref(doc);
    return FL_OK;
  }
  return fl_error_set(err, FL_EINVALID, "index of indexes: no image config");
}

static fl_code lookup(created_work *w, size_t i) {
  fl_error *err = &w->errs[i];
  char digest[FL_DIGEST_STR_MAX];
  fl_code rc = config_digest(w->ep, w->repo, w->refs[i], digest, err);
  if (rc != FL_OK)
    return rc;
  char *data;
  size_t len;
  rc = fl_endpoint_blob_read(w->ep, w->repo, digest, CONFIG_MAX, &data, &len,
                             err);
  json_t *cfg = rc == FL_OK ? json_loadb(data, len, 0, NULL) : NULL;
  free(data);
  if (rc != FL_OK)
    return rc;
  const char *created = str_at(cfg, "created");
  if (created == NULL || strlen(created) >= CREATED_STR_MAX) {
    json_decref(cfg);
    return fl_error_set(err, FL_EINVALID, "config has no 'created' time");
  }
  strcpy(w->times[i], created);
  json_decref(cfg);
  return FL_OK;
}

static void *worker(void *arg) {
  created_work *w = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&w->next, 1);
    if (i >= w->count)
      return NULL;
    lookup(w, i);
  }
}

static void run(created_work *w, size_t threads) {
  pthread_t tid[CREATED_MAX];
  size_t started = 0;
  while (started < threads &&
         pthread_create(&tid[started], NULL, worker, w) == 0)
    started++;
  if (started == 0)
    worker(w);
  for (size_t i = 0; i < started; i++)
    pthread_join(tid[i], NULL);
}

static int l_many(lua_State *L) {
  fl_endpoint *ep = fl_lua_check_endpoint(L, 1);
  const char *repo = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer threads = CREATED_DEFAULT;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_getfield(L, 4, "concurrency");
    if (!lua_isnil(L, -1)) {
      int isint = 0;
      threads = lua_tointegerx(L, -1, &isint);
      luaL_argcheck(L, isint && threads >= 1, 4,
                    "concurrency must be an integer >= 1");
    }
    lua_pop(L, 1);
  }
  if (threads > CREATED_MAX)
    threads = CREATED_MAX;
  size_t count = lua_rawlen(L, 3);
  for (size_t i = 1; i <= count; i++) {
    if (lua_rawgeti(L, 3, (lua_Integer)i) != LUA_TSTRING)
      return luaL_argerror(L, 3, "references must be strings");
    lua_pop(L, 1);
  }
  lua_settop(L, 3);
  fl_lua_owned *box = fl_lua_push_owned(L, work_release); /* 4 */
  created_work *w = calloc(1, sizeof *w);
  if (!w)
    return luaL_error(L, "out of memory");
  box->ptr = w;
  w->ep = ep;
  atomic_init(&w->next, 0);
  w->repo = strdup(repo);
  if (!w->repo)
    return luaL_error(L, "out of memory");
  if (count > 0) {
    w->refs = calloc(count, sizeof *w->refs);
    w->times = calloc(count, sizeof *w->times);
    w->errs = calloc(count, sizeof *w->errs);
    if (!w->refs || !w->times || !w->errs)
      return luaL_error(L, "out of memory");
    w->count = count;
    for (size_t i = 0; i < count; i++) {
      lua_rawgeti(L, 3, (lua_Integer)i + 1);
      w->refs[i] = strdup(lua_tostring(L, -1));
      lua_pop(L, 1);
      if (!w->refs[i])
        return luaL_error(L, "out of memory");
    }
  }
  /* No Lua from here until every worker is joined. */
  if ((size_t)threads > count)
    threads = (lua_Integer)count;
  if (count > 0)
    run(w, (size_t)threads);
  lua_createtable(L, 0, (int)count); /* 5: times */
  lua_createtable(L, 0, 0);          /* 6: errors */
  for (size_t i = 0; i < count; i++) {
    if (w->times[i][0]) {
      fl_lua_setfield_str(L, 5, w->refs[i], w->times[i]);
    } else {
      fl_lua_setfield_str(L, 6, w->refs[i],
                          w->errs[i].msg[0] ? w->errs[i].msg : "lookup failed");
    }
  }
  fl_lua_owned_release(box);
  return 2;
}

int fl_lua_open_created(lua_State *L) {
  static const luaL_Reg funcs[] = {{"many", l_many}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
