/*
 * module.c - luaopen_freightliner_core: the C core as a Lua module.
 *
 * The same entry point serves the binary (host.c preloads it) and stock
 * lua5.4 (require("freightliner.core") finds build/lua/freightliner/core.so).
 */
#include <fnmatch.h>
#include <stdlib.h>

#include <curl/curl.h>
#include <openssl/opensslv.h>
#include <pthread.h>
#include <time.h>

#include "core/jsonmem.h"
#include "core/log.h"
#include "lua/bindings.h"
#include "lua/lua_util.h"

#ifndef FL_VERSION_STRING
#define FL_VERSION_STRING FL_VERSION
#endif

static pthread_once_t global_init_once = PTHREAD_ONCE_INIT;

/* libcurl must be initialised once, before any thread uses it. The log
 * level may come from the environment (FREIGHTLINER_LOG_LEVEL=debug) so
 * that even start-up can be traced; --log-level overrides it later. */
static void global_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  fl_json_init();
  const char *level = getenv("FREIGHTLINER_LOG_LEVEL");
  if (level && fl_log_level_from_name(level) >= 0)
    fl_log_set_level((fl_log_level)fl_log_level_from_name(level));
}

static int l_versions(lua_State *L) {
  curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
  lua_createtable(L, 0, 5);
  fl_lua_setfield_str(L, -1, "freightliner", FL_VERSION_STRING);
  fl_lua_setfield_str(L, -1, "lua", LUA_RELEASE);
  fl_lua_setfield_str(L, -1, "curl", cv->version);
  fl_lua_setfield_str(L, -1, "ssl", cv->ssl_version ? cv->ssl_version : "none");
  fl_lua_setfield_str(L, -1, "openssl_headers", OPENSSL_VERSION_TEXT);
  return 1;
}

/* glob(pattern, s): fnmatch(3) semantics; '*' also matches '/'. */
static int l_glob(lua_State *L) {
  const char *pattern = luaL_checkstring(L, 1);
  const char *s = luaL_checkstring(L, 2);
  lua_pushboolean(L, fnmatch(pattern, s, 0) == 0);
  return 1;
}

/* sleep(seconds): block this thread (interrupted early by a signal). */
static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "seconds must be >= 0");
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
  return 0;
}

/* now(): a monotonic clock in seconds, for durations and rates. */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/* setenv(name, value | nil): change this process's environment (for
 * password_env and credential helpers started from a script). Call it
 * before any engine threads exist. */
static int l_setenv(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *value = luaL_optstring(L, 2, NULL);
  int rc = value ? setenv(name, value, 1) : unsetenv(name);
  if (rc != 0)
    return fl_lua_failf(L, FL_EINVALID, "cannot set environment variable %s",
                        name);
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_freightliner_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"versions", l_versions}, {"glob", l_glob}, {"sleep", l_sleep},
      {"setenv", l_setenv},     {"now", l_now},   {NULL, NULL}};
  pthread_once(&global_init_once, global_init);
  luaL_newlib(L, funcs);
  fl_lua_setfield_str(L, -1, "version", FL_VERSION_STRING);
  fl_lua_submodule(L, "digest", fl_lua_open_digest);
  fl_lua_submodule(L, "ref", fl_lua_open_ref);
  fl_lua_submodule(L, "endpoint", fl_lua_open_endpoint);
  fl_lua_submodule(L, "engine", fl_lua_open_engine);
  fl_lua_submodule(L, "yaml", fl_lua_open_yaml);
  fl_lua_submodule(L, "regex", fl_lua_open_regex);
  fl_lua_submodule(L, "fs", fl_lua_open_fs);
  fl_lua_submodule(L, "readline", fl_lua_open_readline);
  fl_lua_submodule(L, "log", fl_lua_open_log);
  fl_lua_submodule(L, "created", fl_lua_open_created);
  fl_lua_submodule(L, "json", fl_lua_open_json);
  fl_lua_submodule(L, "trust", fl_lua_open_trust);
  fl_lua_submodule(L, "archive", fl_lua_open_archive);
  fl_lua_submodule(L, "serve", fl_lua_open_serve);
  fl_lua_push_defaults(L);
  lua_setfield(L, -2, "defaults");
  fl_lua_submodule(L, "journal", fl_lua_open_journal);
  return 1;
}
