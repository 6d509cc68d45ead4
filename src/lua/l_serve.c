/*
 * l_serve.c - core.serve: the HTTP listener of `freightliner serve`.
 *
 *   serve.start(opts)       -> server | nil, msg, CODE
 *     opts: listen, metrics_listen, tls_cert, tls_key (PEM text),
 *     max_connections, timeout (s), max_body (bytes), max_queued,
 *     max_kept, cors (list of origins), audit_log (path), version
 *   s:port([metrics])       -> the bound port
 *   s:next(timeout_ms)      -> {kind = "run"|"cancel"|"reload", id,
 *                              request_id, client} | nil
 *   s:job(id)               -> the job's JSON document | nil
 *   s:update(id, json)      -> replace (or add) a job's document
 *   s:remove(id)
 *   s:create(json, trigger) -> id | nil, msg, "BUSY" (queue full)
 *   s:syncs(json)           -> publish the sync entries (a JSON array)
 *   s:ready(bool, reason)
 *   s:keys({key, ...})      -> number of keys now accepted
 *   s:add(name, labels, delta) / s:set(...) / s:observe(...)  metrics
 *   s:audit(event, json)    -> one audit line with the JSON object's fields
 *   s:notify(url, json, [secret]) -> queue a webhook delivery (true | nil,
 *                              msg, "BUSY" when the queue is full)
 *   s:probes({host, ...})   -> the registries /readyz checks (opts.probe
 *                              seconds apart; start option probe_interval)
 *   s:close()               -> stop listening (also __gc/__close)
 *   serve.cron_next(expr, after) -> the next matching Unix time after
 *                              `after` | nil, msg, "INVALID" (| nil when
 *                              none within five years)
 *   serve.hangup()          -> true once per SIGHUP received since the last
 *                              call (the handler is installed by start)
 *
 * Only plain values cross between Lua and the server's threads: documents
 * travel as JSON text, parsed on the C side before any lock is taken.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"
#include "serve/cron.h"
#include "serve/server.h"

#define SERVER_CLASS "freightliner.server"

typedef struct lserver {
  fl_server *s;
} lserver;

static volatile sig_atomic_t hangups;

static void on_hup(int sig) {
  (void)sig;
  hangups = 1;
}

static fl_server *check_server(lua_State *L) {
  lserver *ls = luaL_checkudata(L, 1, SERVER_CLASS);
  luaL_argcheck(L, ls->s != NULL, 1, "server is closed");
  return ls->s;
}

static const char *opt_string(lua_State *L, int t, const char *name) {
  lua_getfield(L, t, name);
  const char *v = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the string stays alive in the options table */
  return v;
}

static lua_Integer opt_int(lua_State *L, int t, const char *name,
                           lua_Integer dflt) {
  lua_getfield(L, t, name);
  lua_Integer v = lua_isnil(L, -1) ? dflt : luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  if (v < 0)
    luaL_error(L, "serve option %s must be >= 0", name);
  return v;
}

static int l_start(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  fl_server_options o = {0};
  o.listen = opt_string(L, 1, "listen");
  if (!o.listen)
    return luaL_argerror(L, 1, "listen is required (HOST:PORT)");
  o.metrics_listen = opt_string(L, 1, "metrics_listen");
  o.tls_cert = opt_string(L, 1, "tls_cert");
  o.tls_key = opt_string(L, 1, "tls_key");
  if ((o.tls_cert == NULL) != (o.tls_key == NULL))
    return luaL_argerror(L, 1, "give both tls_cert and tls_key, or neither");
  o.max_connections = (unsigned)opt_int(L, 1, "max_connections", 256);
  o.timeout_s = (unsigned)opt_int(L, 1, "timeout", 10);
  o.max_body = (size_t)opt_int(L, 1, "max_body", 64 * 1024);
  o.max_queued = (size_t)opt_int(L, 1, "max_queued", 64);
  o.max_kept = (size_t)opt_int(L, 1, "max_kept", 200);
  o.audit_path = opt_string(L, 1, "audit_log");
  o.version = opt_string(L, 1, "version");
  o.probe_interval_s = (unsigned)opt_int(L, 1, "probe_interval", 15);
  /* copy the origins out of Lua first: no Lua error after this */
  lua_getfield(L, 1, "cors");
  size_t n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
  const char **origins = lua_newuserdatauv(L, (n + 1) * sizeof *origins, 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -2, (lua_Integer)i + 1);
    origins[i] = luaL_checkstring(L, -1);
    lua_pop(L, 1); /* kept alive by the cors table */
  }
  o.cors_origins = origins;
  o.ncors = n;
  lserver *ls = lua_newuserdatauv(L, sizeof *ls, 0);
  ls->s = NULL;
  luaL_setmetatable(L, SERVER_CLASS);
  fl_error err = {0};
  ls->s = fl_server_start(&o, &err);
  if (!ls->s)
    return fl_lua_fail(L, &err);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_hup;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, NULL);
  return 1;
}

static int m_port(lua_State *L) {
  lua_pushinteger(L, fl_server_port(check_server(L), lua_toboolean(L, 2)));
  return 1;
}

static int m_next(lua_State *L) {
  fl_server *s = check_server(L);
  lua_Integer ms = luaL_optinteger(L, 2, 0);
  fl_jobs_msg m;
  if (!fl_jobs_next(fl_server_jobs(s), (int)(ms < 0 ? 0 : ms), &m))
    return 0;
  lua_createtable(L, 0, 4);
  fl_lua_setfield_str(L, -1, "kind",
                      m.kind == FL_JOBS_RUN      ? "run"
                      : m.kind == FL_JOBS_CANCEL ? "cancel"
                                                 : "reload");
  if (m.id[0])
    fl_lua_setfield_str(L, -1, "id", m.id);
  fl_lua_setfield_str(L, -1, "request_id", m.request_id);
  fl_lua_setfield_str(L, -1, "client", m.client);
  return 1;
}

static json_t *check_json(lua_State *L, int idx) {
  size_t len;
  const char *text = luaL_checklstring(L, idx, &len);
  json_error_t e;
  json_t *doc = json_loadb(text, len, 0, &e);
  if (!doc)
    luaL_argerror(L, idx, "invalid JSON");
  return doc;
}

static int m_job(lua_State *L) {
  fl_server *s = check_server(L);
  json_t *doc = fl_jobs_get(fl_server_jobs(s), luaL_checkstring(L, 2));
  if (!doc) {
    lua_pushnil(L);
    return 1;
  }
  char *text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  if (!text)
    return fl_lua_failf(L, FL_ENOMEM, "out of memory");
  lua_pushstring(L, text);
  free(text);
  return 1;
}

static int m_update(lua_State *L) {
  fl_server *s = check_server(L);
  const char *id = luaL_checkstring(L, 2);
  luaL_argcheck(L, strlen(id) <= FL_JOBS_ID_MAX, 2, "job id too long");
  json_t *doc = check_json(L, 3);
  int rc = fl_jobs_update(fl_server_jobs(s), id, doc);
  json_decref(doc);
  if (rc != 0)
    return fl_lua_failf(L, FL_EINVALID, "job document must be a JSON object");
  lua_pushboolean(L, 1);
  return 1;
}

static int m_remove(lua_State *L) {
  fl_jobs_remove(fl_server_jobs(check_server(L)), luaL_checkstring(L, 2));
  return 0;
}

static int m_create(lua_State *L) {
  fl_server *s = check_server(L);
  json_t *req = check_json(L, 2);
  const char *trigger = luaL_optstring(L, 3, "schedule");
  char id[64];
  int rc = fl_jobs_create(fl_server_jobs(s), req, trigger, "", "", id);
  json_decref(req);
  if (rc != 0)
    return fl_lua_failf(L, FL_ERATE_LIMITED, "the job queue is full");
  lua_pushstring(L, id);
  return 1;
}

static int m_syncs(lua_State *L) {
  fl_server *s = check_server(L);
  json_t *doc = check_json(L, 2);
  int rc = fl_server_set_syncs(s, doc);
  json_decref(doc);
  luaL_argcheck(L, rc == 0, 2, "expected a JSON array");
  return 0;
}

static int m_ready(lua_State *L) {
  fl_server_set_ready(check_server(L), lua_toboolean(L, 2),
                      luaL_optstring(L, 3, ""));
  return 0;
}

static int m_keys(lua_State *L) {
  fl_server *s = check_server(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = lua_rawlen(L, 2);
  const char **keys = lua_newuserdatauv(L, (n + 1) * sizeof *keys, 0);
  size_t *lens = lua_newuserdatauv(L, (n + 1) * sizeof *lens, 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    keys[i] = luaL_checklstring(L, -1, &lens[i]);
    lua_pop(L, 1);
  }
  if (fl_auth_set_keys(fl_server_auth(s), keys, lens, n) != 0)
    return fl_lua_failf(L, FL_ENOMEM, "out of memory");
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* Label values in the family's order from a table {label = value}. */
static int metric(lua_State *L, int op) {
  fl_server *s = check_server(L);
  const char *name = luaL_checkstring(L, 2);
  const char *const *labels = fl_metrics_labels(name);
  if (!labels)
    return luaL_argerror(L, 2, "unknown metric (see src/serve/metrics.c)");
  const char *values[FL_METRICS_MAX_LABELS + 1] = {NULL};
  for (int i = 0; labels[i]; i++) {
    if (lua_istable(L, 3)) {
      lua_getfield(L, 3, labels[i]);
      values[i] = lua_isnil(L, -1) ? "" : luaL_checkstring(L, -1);
      lua_pop(L, 1); /* kept alive by the labels table */
    } else {
      values[i] = "";
    }
  }
  double v = luaL_checknumber(L, 4);
  fl_metrics *m = fl_server_metrics(s);
  int rc = op == 0   ? fl_metrics_add(m, name, values, v)
           : op == 1 ? fl_metrics_set(m, name, values, v)
                     : fl_metrics_observe(m, name, values, v);
  if (rc != 0)
    return luaL_error(L, "metric %s: wrong kind of update or bad value", name);
  return 0;
}

static int m_add(lua_State *L) { return metric(L, 0); }
static int m_set(lua_State *L) { return metric(L, 1); }
static int m_observe(lua_State *L) { return metric(L, 2); }

static int m_audit(lua_State *L) {
  fl_server *s = check_server(L);
  const char *event = luaL_checkstring(L, 2);
  json_t *fields = lua_isnoneornil(L, 3) ? NULL : check_json(L, 3);
  fl_server_audit(s, event, fields);
  json_decref(fields);
  return 0;
}

static int m_notify(lua_State *L) {
  fl_server *s = check_server(L);
  const char *url = luaL_checkstring(L, 2);
  const char *body = luaL_checkstring(L, 3);
  const char *secret = luaL_optstring(L, 4, NULL);
  luaL_argcheck(
      L, strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0, 2,
      "a webhook URL must be http:// or https://");
  if (fl_notify_post(fl_server_notify(s), url, body, secret) != 0)
    return fl_lua_failf(L, FL_ERATE_LIMITED, "the webhook queue is full");
  lua_pushboolean(L, 1);
  return 1;
}

static int m_probes(lua_State *L) {
  fl_server *s = check_server(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = lua_rawlen(L, 2);
  const char **t = lua_newuserdatauv(L, (n + 1) * sizeof *t, 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    t[i] = luaL_checkstring(L, -1);
    lua_pop(L, 1); /* kept alive by the table */
  }
  if (fl_probe_set_targets(fl_server_probe(s), t, n) != 0)
    return fl_lua_failf(L, FL_ENOMEM, "out of memory");
  return 0;
}

static int m_close(lua_State *L) {
  lserver *ls = luaL_checkudata(L, 1, SERVER_CLASS);
  fl_server *s = ls->s;
  ls->s = NULL;
  fl_server_free(s);
  return 0;
}

static int m_tostring(lua_State *L) {
  lserver *ls = luaL_checkudata(L, 1, SERVER_CLASS);
  if (ls->s)
    lua_pushfstring(L, "freightliner.server(port %d)",
                    fl_server_port(ls->s, 0));
  else
    lua_pushliteral(L, "freightliner.server(closed)");
  return 1;
}

static int l_hangup(lua_State *L) {
  int got = hangups != 0;
  hangups = 0;
  lua_pushboolean(L, got);
  return 1;
}

static int l_cron_next(lua_State *L) {
  const char *expr = luaL_checkstring(L, 1);
  lua_Integer after = luaL_checkinteger(L, 2);
  fl_cron c;
  char msg[160];
  if (fl_cron_parse(expr, &c, msg, sizeof msg) != 0)
    return fl_lua_failf(L, FL_EINVALID, "%s", msg);
  time_t t = fl_cron_next(&c, (time_t)after);
  if (t < 0)
    return fl_lua_failf(L, FL_EINVALID,
                        "the schedule never matches within five years");
  lua_pushinteger(L, (lua_Integer)t);
  return 1;
}

int fl_lua_open_serve(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"port", m_port},     {"next", m_next},     {"job", m_job},
      {"update", m_update}, {"remove", m_remove}, {"create", m_create},
      {"syncs", m_syncs},   {"ready", m_ready},   {"keys", m_keys},
      {"add", m_add},       {"set", m_set},       {"observe", m_observe},
      {"audit", m_audit},   {"notify", m_notify}, {"probes", m_probes},
      {"close", m_close},   {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", m_close},
                                  {"__close", m_close},
                                  {"__tostring", m_tostring},
                                  {NULL, NULL}};
  fl_lua_new_class(L, SERVER_CLASS, methods, meta);
  static const luaL_Reg funcs[] = {{"start", l_start},
                                   {"hangup", l_hangup},
                                   {"cron_next", l_cron_next},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
