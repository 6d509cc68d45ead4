/*
 * host.c - the embedded Lua 5.4 host (fl_host_* in include/freightliner.h).
 *
 * A host is one lua_State with the standard libraries, the C core preloaded
 * as "freightliner.core", and the stdlib preloaded from the copy compiled
 * into the binary (or found on disk, for development). The host's thread is
 * the only one that ever touches the state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host/stdlib_embedded.h"
#include "lua/lua_util.h"

struct fl_host {
  lua_State *L;
};

static void warn_to_stderr(void *ud, const char *msg, int tocont) {
  static int continuing = 0;
  (void)ud;
  if (!continuing)
    fputs("freightliner: warning: ", stderr);
  fputs(msg, stderr);
  if (!tocont)
    fputc('\n', stderr);
  continuing = tocont;
}

/* package.preload loader for an embedded chunk; upvalue: its table entry. */
static int load_embedded(lua_State *L) {
  const fl_stdlib_module *m = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbufferx(L, (const char *)m->data, (size_t)m->size, m->chunkname,
                       "b") != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

static void preload(lua_State *L, const char *dir) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_freightliner_core);
  lua_setfield(L, -2, "freightliner.core");
  if (!dir) {
    for (const fl_stdlib_module *m = fl_stdlib_modules; m->name; m++) {
      lua_pushlightuserdata(L, (void *)m);
      lua_pushcclosure(L, load_embedded, 1);
      lua_setfield(L, -2, m->name);
    }
  }
  lua_pop(L, 1);
  if (dir) {
    /* Development: the stdlib on disk wins over everything else. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
  }
}

fl_host *fl_host_new(const fl_host_options *opts) {
  fl_host *host = calloc(1, sizeof *host);
  if (!host)
    return NULL;
  host->L = luaL_newstate();
  if (!host->L) {
    free(host);
    return NULL;
  }
  const char *dir = opts ? opts->lua_dir : NULL;
  if (!dir || !*dir)
    dir = getenv("FREIGHTLINER_LUA_PATH");
  if (dir && !*dir)
    dir = NULL;
  lua_setwarnf(host->L, warn_to_stderr, NULL);
  luaL_openlibs(host->L);
  preload(host->L, dir);
  lua_pushstring(host->L, dir ? dir : "");
  lua_setfield(host->L, LUA_REGISTRYINDEX, "freightliner.lua_dir");
  return host;
}

void fl_host_free(fl_host *host) {
  if (!host)
    return;
  lua_close(host->L);
  free(host);
}

lua_State *fl_host_lua(fl_host *host) { return host->L; }

/* Calls require("freightliner.cli").main(args) where args = argv[1..]. */
static int call_cli_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  lua_getglobal(L, "require");
  lua_pushstring(L, "freightliner.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  return 1;
}

/*
 * FREIGHTLINER_LUA_INIT, like lua(1)'s LUA_INIT: "@FILE" runs that file,
 * anything else runs as a chunk, before the command line is handled. The
 * test suites load their line-coverage collector this way
 * (tests/coverage/flcov.lua); a failure is reported and stops the run.
 */
static int run_lua_init(lua_State *L) {
  const char *init = getenv("FREIGHTLINER_LUA_INIT");
  if (!init || !*init)
    return LUA_OK;
  int rc = init[0] == '@' ? luaL_loadfile(L, init + 1)
                          : luaL_loadbuffer(L, init, strlen(init),
                                            "=FREIGHTLINER_LUA_INIT");
  if (rc == LUA_OK)
    rc = fl_lua_pcall(L, 0, 0);
  if (rc != LUA_OK) {
    fprintf(stderr, "freightliner: FREIGHTLINER_LUA_INIT: %s\n",
            lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return rc;
}

int fl_host_main(fl_host *host, int argc, char **argv) {
  lua_State *L = host->L;
  if (run_lua_init(L) != LUA_OK)
    return 1;
  lua_pushcfunction(L, call_cli_main);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  if (fl_lua_pcall(L, 2, 1) != LUA_OK) {
    fprintf(stderr, "freightliner: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  int status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return status;
}
