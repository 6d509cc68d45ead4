/*
 * l_engine.c - the Lua `engine` module: core.engine, the transfer engine.
 *
 *   engine.new{workers=, attempts=, image_workers=, max_image_manifests=,
 *              max_image_manifest_bytes=} -> engine
 *       (defaults: core.defaults; the image bounds: engine.h)
 *   e:submit(src_ep, src_repo, src_ref, dst_ep, dst_repo, dst_ref,
 *            {platforms={"linux/amd64"}, referrers=, force=, dry_run=}) -> id
 *   e:wait(timeout_ms)                 -> id, result | nil (timeout)
 *   e:cancel([id])    -> cancel job id (true if it was queued or running),
 *                        or with no id the engine: every job, for good
 *   e:cancel_jobs()   -> cancel the jobs queued or running now only
 *   e:pending(), e:counters(), e:progress(), e:close()
 *   engine.trap_signals([{statement = true} | {service = true}])
 *                                      -> SIGINT/SIGTERM handlers (service:
 *                                         never exit at once, for serve)
 *   engine.signal()                    -> the signal caught, or nil
 *   engine.clear_signal()              -> forget it (the REPL, per statement)
 *
 * Worker threads never touch Lua: the engine's results come back here,
 * on the thread that owns the lua_State, through e:wait. A job holds its
 * own references to its endpoints (engine.h), so closing an endpoint in
 * Lua while a copy through it runs is safe.
 *
 * Signals: the handler only sets two sig_atomic_t flags (and, for the
 * REPL, a Lua hook, as lua.c does). The Lua thread turns a caught signal
 * into cancelling: in e:wait and e:submit it cancels every engine of this
 * state (the CLI: for good) or only their running jobs (statement mode, the
 * REPL), then resets the flag. The Lua thread's own requests (a listing, a
 * HEAD) stop too: its current cancel token polls the interrupted flag.
 * engine.signal() reports the signal until clear_signal(); meanwhile new
 * submissions fail with CANCELLED, so an interrupted loop of copies ends.
 */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/defaults.h"
#include "engine/engine.h"
#include "lua/bindings.h"
#include "lua/lua_util.h"

#define ENGINE_CLASS "freightliner.engine"
#define ENGINES_KEY "freightliner.engines"     /* weak set of this state's */
#define LUA_TOKEN_KEY "freightliner.lua_token" /* the Lua thread's token */

typedef struct lengine {
  fl_engine *e;
} lengine;

/* What the signal handler needs, and nothing else is process-wide here:
 * caught_signal is set by the handler and reset by the Lua thread once it
 * has cancelled; interrupted stays set until clear_signal (the REPL) and
 * makes a second signal in CLI mode end the process at once. */
static volatile sig_atomic_t caught_signal;
static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t statement_mode;
/* A service (`serve`) winds down itself: a signal never ends it at once. */
static volatile sig_atomic_t service_mode;
static lua_State *volatile hook_L; /* statement mode: interrupt Lua code */
/* Jobs submitted and not yet collected, in every engine of the process: a
 * signal with none in flight ends the CLI at once, as by default. */
static atomic_int jobs_in_flight;

/* The Lua thread's requests stop while a signal is being handled. */
static int poll_interrupted(void *ud) {
  (void)ud;
  return interrupted != 0;
}

/* Turn a caught signal into cancelling this state's engines (all of their
 * work for good, or in statement mode the jobs running now). */
static void take_signal(lua_State *L) {
  int sig = caught_signal;
  if (!sig)
    return;
  caught_signal = 0;
  int jobs_only = statement_mode && sig == SIGINT; /* SIGTERM ends all */
  if (lua_getfield(L, LUA_REGISTRYINDEX, ENGINES_KEY) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      lengine *le = luaL_testudata(L, -1, ENGINE_CLASS);
      if (le && le->e) {
        if (jobs_only)
          fl_engine_cancel_jobs(le->e);
        else
          fl_engine_cancel(le->e);
      }
    }
  }
  lua_pop(L, 1);
}

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
    lua_getfield(L, 1, "image_workers");
    cfg.image_workers = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "max_image_manifests");
    lua_Integer mm = luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "max_image_manifest_bytes");
    lua_Integer mb = luaL_optinteger(L, -1, 0);
    lua_pop(L, 5);
    luaL_argcheck(L, mm >= 0 && mb >= 0, 1,
                  "max_image_manifests and max_image_manifest_bytes must be "
                  ">= 1 (0: the default)");
    cfg.max_image_manifests = (size_t)mm;
    cfg.max_image_manifest_bytes = (uint64_t)mb;
    luaL_argcheck(L, cfg.blob_workers >= 0 && cfg.blob_workers <= 256, 1,
                  "workers must be between 1 and 256");
    luaL_argcheck(L, cfg.image_workers >= 0 && cfg.image_workers <= 1024, 1,
                  "image_workers must be between 1 and 1024");
    luaL_argcheck(L, cfg.blob_attempts >= 0 && cfg.blob_attempts <= 100, 1,
                  "attempts must be between 1 and 100");
  }
  lengine *le = lua_newuserdatauv(L, sizeof *le, 0);
  le->e = NULL;
  luaL_setmetatable(L, ENGINE_CLASS);
  fl_error err;
  if (fl_engine_new(&cfg, &le->e, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_getfield(L, LUA_REGISTRYINDEX, ENGINES_KEY);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
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
  take_signal(L);
  if (interrupted)
    return fl_lua_failf(L, FL_ECANCELLED, "interrupted by signal %d",
                        (int)interrupted);
  uint64_t id = 0;
  fl_error err;
  if (fl_engine_submit_copy(le->e, src, src_repo, src_ref, dst, dst_repo,
                            dst_ref, &opts, &id, &err) != FL_OK)
    return fl_lua_fail(L, &err);
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

/* Wait in slices of at most 100 ms, so that a signal is acted on. */
static int m_wait(lua_State *L) {
  lengine *le = check_engine(L);
  lua_Integer timeout = luaL_optinteger(L, 2, -1);
  fl_copy_result r;
  uint64_t id = 0;
  for (lua_Integer left = timeout;;) {
    take_signal(L);
    int slice = left < 0 || left > 100 ? 100 : (int)left;
    id = fl_engine_wait(le->e, slice, &r);
    if (id != 0 || fl_engine_pending(le->e) == 0)
      break;
    if (left >= 0 && (left -= slice) <= 0)
      break;
  }
  if (id == 0) {
    lua_pushnil(L);
    return 1;
  }
  atomic_fetch_sub(&jobs_in_flight, 1);
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
  fl_lua_setfield_int(L, -1, "retries", (lua_Integer)c.retries);
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
  lengine *le = check_engine(L);
  if (lua_isnoneornil(L, 2)) {
    fl_engine_cancel(le->e);
    return 0;
  }
  lua_Integer id = luaL_checkinteger(L, 2);
  luaL_argcheck(L, id > 0, 2, "a job id from e:submit");
  lua_pushboolean(L, fl_engine_cancel_job(le->e, (uint64_t)id));
  return 1;
}

static int m_cancel_jobs(lua_State *L) {
  fl_engine_cancel_jobs(check_engine(L)->e);
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

/* Statement mode: stop the Lua code of the running statement too. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_pushliteral(L, "interrupted");
  lua_error(L);
}

static void on_signal(int sig) {
  int repl = statement_mode && sig == SIGINT;
  if (!repl && !service_mode &&
      (interrupted || atomic_load(&jobs_in_flight) == 0)) {
    /* a second signal, or nothing to wind down: stop at once */
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
  }
  interrupted = sig;
  caught_signal = sig;
  if (repl && hook_L)
    lua_sethook(hook_L, interrupt_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int l_trap_signals(lua_State *L) {
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "statement");
    statement_mode = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "service");
    if (lua_toboolean(L, -1))
      service_mode = 1;
    lua_pop(L, 1);
    hook_L = statement_mode ? L : NULL;
  }
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
  take_signal(L);
  if (!interrupted)
    return 0;
  lua_pushinteger(L, interrupted);
  return 1;
}

static int l_clear_signal(lua_State *L) {
  take_signal(L);
  if (hook_L)
    lua_sethook(hook_L, NULL, 0, 0);
  interrupted = 0;
  return 0;
}

/* The Lua thread's token: current on the thread that opens the module. */
typedef struct lua_token {
  fl_cancel *c;
} lua_token;

static int token_gc(lua_State *L) {
  lua_token *box = lua_touserdata(L, 1);
  if (box->c) {
    if (fl_cancel_current() == box->c)
      fl_cancel_set_current(NULL);
    fl_cancel_unref(box->c);
    box->c = NULL;
  }
  return 0;
}

static void open_lua_token(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_TOKEN_KEY) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_token *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->c = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, token_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  box->c = fl_cancel_new_polled(poll_interrupted, NULL);
  if (box->c)
    fl_cancel_set_current(box->c);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_TOKEN_KEY);
}

static int l_defaults(lua_State *L) {
  lua_createtable(L, 0, 16);
  fl_lua_setfield_int(L, -1, "workers", FL_DEFAULT_BLOB_WORKERS);
  fl_lua_setfield_int(L, -1, "image_workers", FL_DEFAULT_IMAGE_WORKERS);
  fl_lua_setfield_int(L, -1, "attempts", FL_DEFAULT_BLOB_ATTEMPTS);
  fl_lua_setfield_int(L, -1, "pipe_capacity", FL_DEFAULT_PIPE_CAPACITY);
  fl_lua_setfield_int(L, -1, "max_attempts", FL_DEFAULT_MAX_ATTEMPTS);
  fl_lua_setfield_int(L, -1, "retry_base_ms", FL_DEFAULT_RETRY_BASE_MS);
  fl_lua_setfield_int(L, -1, "retry_max_ms", FL_DEFAULT_RETRY_MAX_MS);
  fl_lua_setfield_int(L, -1, "retry_after_max", FL_DEFAULT_RETRY_AFTER_MAX_S);
  fl_lua_setfield_int(L, -1, "request_timeout", FL_DEFAULT_REQUEST_TIMEOUT_S);
  fl_lua_setfield_int(L, -1, "attempt_timeout", FL_DEFAULT_ATTEMPT_TIMEOUT_S);
  fl_lua_setfield_int(L, -1, "connect_timeout_ms",
                      FL_DEFAULT_CONNECT_TIMEOUT_MS);
  fl_lua_setfield_int(L, -1, "low_speed_time", FL_DEFAULT_LOW_SPEED_TIME_S);
  fl_lua_setfield_int(L, -1, "breaker_threshold", FL_DEFAULT_BREAKER_THRESHOLD);
  fl_lua_setfield_int(L, -1, "breaker_cooldown", FL_DEFAULT_BREAKER_COOLDOWN_S);
  return 1;
}

int fl_lua_push_defaults(lua_State *L) { return l_defaults(L); }

int fl_lua_open_engine(lua_State *L) {
  static const luaL_Reg methods[] = {{"submit", m_submit},
                                     {"wait", m_wait},
                                     {"pending", m_pending},
                                     {"counters", m_counters},
                                     {"progress", m_progress},
                                     {"cancel", m_cancel},
                                     {"cancel_jobs", m_cancel_jobs},
                                     {"close", m_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", m_close},
                                  {"__close", m_close},
                                  {"__tostring", m_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"new", l_new},
                                   {"trap_signals", l_trap_signals},
                                   {"signal", l_signal},
                                   {"clear_signal", l_clear_signal},
                                   {NULL, NULL}};
  fl_lua_new_class(L, ENGINE_CLASS, methods, meta);
  if (lua_getfield(L, LUA_REGISTRYINDEX, ENGINES_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ENGINES_KEY);
  } else {
    lua_pop(L, 1);
  }
  open_lua_token(L);
  luaL_newlib(L, funcs);
  return 1;
}
