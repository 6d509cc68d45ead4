/*
 * embed.c - embedding Freightliner in a C program: link libfreightliner,
 * run a Lua policy in its host, read the result back in C.
 *
 *   cc -o embed embed.c $(pkg-config --cflags --libs freightliner)
 *   ./embed SRC_IMAGE DST_IMAGE [POLICY.lua]
 *
 * The policy is a Lua chunk called with (src, dst); it returns a table
 * { digest =, bytes =, up_to_date = } or nil, message, CODE, the
 * convention of the whole Lua API. Without POLICY.lua the built-in one
 * below copies SRC_IMAGE to DST_IMAGE with fl.copy. The program prints
 * "digest=... bytes=... up_to_date=..." and exits 0, or prints the error
 * and exits 1 (2 for usage). scripts/test-embed.sh builds it against a
 * DESTDIR install and runs it between two loopback registries.
 *
 * Only the public API is used: include/freightliner.h for the host, and
 * Lua's own C API (lua.h, lauxlib.h) for the values. The host's lua_State
 * belongs to the thread that created it; every call into Lua goes through
 * lua_pcall with a traceback handler, so no Lua error escapes as a longjmp.
 */
#include <stdio.h>
#include <stdlib.h>

#include <freightliner.h>
#include <lauxlib.h>
#include <lua.h>

#if !FL_VERSION_AT_LEAST(0, 1, 0)
#error "embed.c needs Freightliner 0.1.0 or later"
#endif

static const char builtin_policy[] =
    "local src, dst = ...\n"
    "local fl = require('freightliner')\n"
    "local r, err, code = fl.copy(src, dst)\n"
    "if not r then return nil, err, code end\n"
    "return { digest = r.digest, bytes = r.bytes, up_to_date = r.up_to_date }\n";

/* Message handler: the error with a traceback (lua.c's msghandler). */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg)
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs the policy with (src, dst); prints its result. Returns the exit
 * status. */
static int run_policy(lua_State *L, const char *policy_file, const char *src,
                      const char *dst) {
  lua_pushcfunction(L, traceback);
  int handler = lua_gettop(L);
  int rc = policy_file ? luaL_loadfile(L, policy_file)
                       : luaL_loadbuffer(L, builtin_policy,
                                         sizeof builtin_policy - 1, "=policy");
  if (rc != LUA_OK) {
    fprintf(stderr, "embed: loading the policy: %s\n", lua_tostring(L, -1));
    return 2;
  }
  lua_pushstring(L, src);
  lua_pushstring(L, dst);
  if (lua_pcall(L, 2, 3, handler) != LUA_OK) {
    fprintf(stderr, "embed: the policy raised an error: %s\n",
            lua_tostring(L, -1));
    return 1;
  }
  if (!lua_istable(L, -3)) { /* nil, message, CODE */
    fprintf(stderr, "embed: %s (%s)\n",
            lua_isstring(L, -2) ? lua_tostring(L, -2) : "the policy failed",
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "no code");
    return 1;
  }
  lua_getfield(L, -3, "digest");
  lua_getfield(L, -4, "bytes");
  lua_getfield(L, -5, "up_to_date");
  if (!lua_isstring(L, -3)) {
    fputs("embed: the policy's result has no digest\n", stderr);
    return 1;
  }
  printf("digest=%s bytes=%lld up_to_date=%s\n", lua_tostring(L, -3),
         (long long)lua_tointeger(L, -2), lua_toboolean(L, -1) ? "yes" : "no");
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s SRC_IMAGE DST_IMAGE [POLICY.lua]\n", argv[0]);
    return 2;
  }
  fl_host *host = fl_host_new(NULL);
  if (!host) {
    fputs("embed: out of memory starting the Freightliner host\n", stderr);
    return 1;
  }
  fprintf(stderr, "embed: Freightliner %s (header %d.%d.%d)\n", FL_VERSION,
          FL_VERSION_MAJOR, FL_VERSION_MINOR, FL_VERSION_PATCH);
  int status = run_policy(fl_host_lua(host), argc == 4 ? argv[3] : NULL,
                          argv[1], argv[2]);
  fl_host_free(host);
  return status;
}
