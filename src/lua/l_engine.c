/*
 * l_engine.c - the Lua `engine` module: core.engine, the transfer engine.
 *
 *   engine.new{workers=8, attempts=3}  -> engine
 *   e:submit(src_ep, src_repo, src_ref, dst_ep, dst_repo, dst_ref,
 *            {platforms={"linux/amd64"}, referrers=, force=, dry_run=}) -> id
 *   e:wait(timeout_ms)                 -> id, result | nil (timeout)
 *   e:pending(), e:counters(), e:progress(), e:cancel(), e:close()
 *   engine.trap_signals()              -> install SIGINT/SIGTERM handlers
 *   engine.signal()                    -> the first signal caught, or nil
 *
 * Worker threads never touch Lua: the engine's results come back here,
 * on the thread that owns the lua_State, through e:wait. The endpoints of a
 * job are anchored in the engine's uservalue table until its result is
 * collected, so the collector cannot free them under a running transfer.
 */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "lua/bindings.h"
#include "lua/lua_util.h"
#include "registry/http.h"

#define ENGINE_CLASS "freightliner.engine"

typedef struct lengine {
  fl_engine *e;
} lengine;

static volatile sig_atomic_t caught_signal;
/* Jobs submitted and not yet collected, in every engine of the process: a
 * signal with none in flight ends the process at once, as by default. */
static atomic_int jobs_in_flight;

static lengine *check_engine(lua_State *L) {
  lengine *le = luaL_checkudata(L, 1, ENGINE_CLASS);
  luaL_argcheck(L, le->e != NULL, 1, "engine is closed");
  return le;
}

static int l_new(lua_State *L) {
  fl_engine_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "workers");
    cfg.blob_workers = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "attempts");
    cfg.blob_attempts = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 2);
    luaL_argcheck(L, cfg.blob_workers >= 0 && cfg.blob_workers <= 256, 1,
                  "workers must be between 1 and 256");
  }
  lengine *le = lua_newuserdatauv(L, sizeof *le, 1);
  le->e = NULL;
  luaL_setmetatable(L, ENGINE_CLASS);
  lua_newtable(L); /* job id -> {src, dst} anchors */
  lua_setiuservalue(L, -2, 1);
  fl_error err;
  if (fl_engine_new(&cfg, &le->e, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  return 1;
}

static void read_opts(lua_State *L, int idx, fl_copy_opts *o) {
  memset(o, 0, sizeof *o);
  if (lua_isnoneornil(L, idx))
    return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "referrers");
  o->referrers = lua_toboolean(L, -1);
  lua_getfield(L, idx, "force");
  o->force = lua_toboolean(L, -1);
  lua_getfield(L, idx, "dry_run");
  o->dry_run = lua_toboolean(L, -1);
  lua_pop(L, 3);
  lua_getfield(L, idx, "platforms");
  if (lua_istable(L, -1)) {
    lua_Integer n = luaL_len(L, -1);
    luaL_argcheck(L, n <= FL_MAX_PLATFORMS, idx, "too many platforms");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      const char *s = lua_tostring(L, -1);
      fl_error err;
      if (!s ||
          fl_platform_parse(s, &o->platforms[o->nplatforms], &err) != FL_OK)
        luaL_argerror(L, idx, s ? err.msg : "platforms must be strings");
      o->nplatforms++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

static int m_submit(lua_State *L) {
  lengine *le = check_engine(L);
  fl_endpoint *src = fl_lua_check_endpoint(L, 2);
  const char *src_repo = luaL_checkstring(L, 3);
  const char *src_ref = luaL_checkstring(L, 4);
  fl_endpoint *dst = fl_lua_check_endpoint(L, 5);
  const char *dst_repo = luaL_checkstring(L, 6);
  const char *dst_ref = luaL_optstring(L, 7, "");
  fl_copy_opts opts;
  read_opts(L, 8, &opts);
  /* anchor the endpoints before the job exists */
  lua_getiuservalue(L, 1, 1);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 5);
  lua_rawseti(L, -2, 2);
  uint64_t id = 0;
  fl_error err;
  if (fl_engine_submit_copy(le->e, src, src_repo, src_ref, dst, dst_repo,
                            dst_ref, &opts, &id, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_rawseti(L, -2, (lua_Integer)id);
  atomic_fetch_add(&jobs_in_flight, 1);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static void push_result(lua_State *L, const fl_copy_result *r) {
  lua_createtable(L, 0, 16);
  lua_pushboolean(L, r->code == FL_OK);
  lua_setfield(L, -2, "ok");
  if (r->code != FL_OK) {
    fl_lua_setfield_str(L, -1, "error", r->err.msg);
    fl_lua_setfield_str(L, -1, "code", fl_code_name(r->code));
  }
  if (r->src_digest[0])
    fl_lua_setfield_str(L, -1, "source_digest", r->src_digest);
  if (r->digest[0])
    fl_lua_setfield_str(L, -1, "digest", r->digest);
  lua_pushboolean(L, r->up_to_date);
  lua_setfield(L, -2, "up_to_date");
  lua_pushboolean(L, r->index_rewritten);
  lua_setfield(L, -2, "index_rewritten");
  fl_lua_setfield_int(L, -1, "bytes", (lua_Integer)r->bytes);
  fl_lua_setfield_int(L, -1, "blobs_copied", (lua_Integer)r->blobs_copied);
  fl_lua_setfield_int(L, -1, "blobs_skipped", (lua_Integer)r->blobs_skipped);
  fl_lua_setfield_int(L, -1, "blobs_mounted", (lua_Integer)r->blobs_mounted);
  fl_lua_setfield_int(L, -1, "manifests_pushed",
                      (lua_Integer)r->manifests_pushed);
  fl_lua_setfield_int(L, -1, "referrers_copied",
                      (lua_Integer)r->referrers_copied);
  lua_pushnumber(L, r->seconds);
  lua_setfield(L, -2, "duration");
}

static int m_wait(lua_State *L) {
  lengine *le = check_engine(L);
  int timeout = (int)luaL_optinteger(L, 2, -1);
  fl_copy_result r;
  uint64_t id = fl_engine_wait(le->e, timeout, &r);
  if (id == 0) {
    lua_pushnil(L);
    return 1;
  }
  atomic_fetch_sub(&jobs_in_flight, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)id); /* release the anchors */
  lua_pop(L, 1);
  lua_pushinteger(L, (lua_Integer)id);
  push_result(L, &r);
  return 2;
}

static int m_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)fl_engine_pending(check_engine(L)->e));
  return 1;
}

static int m_counters(lua_State *L) {
  fl_counters c;
  fl_engine_counters(check_engine(L)->e, &c);
  lua_createtable(L, 0, 10);
  fl_lua_setfield_int(L, -1, "bytes_transferred",
                      (lua_Integer)c.bytes_transferred);
  fl_lua_setfield_int(L, -1, "blobs_copied", (lua_Integer)c.blobs_copied);
  fl_lua_setfield_int(L, -1, "blobs_skipped", (lua_Integer)c.blobs_skipped);
  fl_lua_setfield_int(L, -1, "blobs_mounted", (lua_Integer)c.blobs_mounted);
  fl_lua_setfield_int(L, -1, "manifests_pushed",
                      (lua_Integer)c.manifests_pushed);
  fl_lua_setfield_int(L, -1, "images_replicated",
                      (lua_Integer)c.images_replicated);
  fl_lua_setfield_int(L, -1, "images_up_to_date",
                      (lua_Integer)c.images_up_to_date);
  fl_lua_setfield_int(L, -1, "images_failed", (lua_Integer)c.images_failed);
  fl_lua_setfield_int(L, -1, "in_flight", (lua_Integer)c.jobs_in_flight);
  fl_lua_setfield_int(L, -1, "source_manifest_gets",
                      (lua_Integer)c.source_manifest_gets);
  fl_lua_setfield_int(L, -1, "retries", (lua_Integer)fl_http_total_retries());
  return 1;
}

static int m_progress(lua_State *L) {
  lengine *le = check_engine(L);
  fl_job_progress p[64];
  size_t n = fl_engine_progress(le->e, p, 64);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    fl_lua_setfield_int(L, -1, "id", (lua_Integer)p[i].id);
    fl_lua_setfield_int(L, -1, "bytes_done", (lua_Integer)p[i].bytes_done);
    fl_lua_setfield_int(L, -1, "bytes_total", (lua_Integer)p[i].bytes_total);
    fl_lua_setfield_str(L, -1, "name", p[i].name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int m_cancel(lua_State *L) {
  fl_engine_cancel(check_engine(L)->e);
  return 0;
}

static int m_close(lua_State *L) {
  lengine *le = luaL_checkudata(L, 1, ENGINE_CLASS);
  if (le->e) {
    uint64_t pending = fl_engine_pending(le->e);
    if (pending > 0)
      fl_engine_cancel(le->e);
    atomic_fetch_sub(&jobs_in_flight, (int)pending);
    fl_engine_free(le->e);
    le->e = NULL;
  }
  return 0;
}

static int m_tostring(lua_State *L) {
  lengine *le = luaL_checkudata(L, 1, ENGINE_CLASS);
  lua_pushstring(L, le->e ? "engine" : "engine (closed)");
  return 1;
}

static void on_signal(int sig) {
  if (caught_signal || atomic_load(&jobs_in_flight) == 0) {
    /* a second signal, or nothing to wind down: stop at once */
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
  }
  caught_signal = sig;
  fl_http_cancel_all();
}

static int l_trap_signals(lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  (void)L;
  return 0;
}

static int l_signal(lua_State *L) {
  if (!caught_signal)
    return 0;
  lua_pushinteger(L, caught_signal);
  return 1;
}

int fl_lua_open_engine(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"submit", m_submit},     {"wait", m_wait},
      {"pending", m_pending},   {"counters", m_counters},
      {"progress", m_progress}, {"cancel", m_cancel},
      {"close", m_close},       {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", m_close},
                                  {"__close", m_close},
                                  {"__tostring", m_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"new", l_new},
                                   {"trap_signals", l_trap_signals},
                                   {"signal", l_signal},
                                   {NULL, NULL}};
  fl_lua_new_class(L, ENGINE_CLASS, methods, meta);
  luaL_newlib(L, funcs);
  return 1;
}
