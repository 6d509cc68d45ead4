/* fuzz_yaml.c - libFuzzer target: the YAML config loader (core.yaml.load)
 * in a real lua_State, as `validate-config` and `sync` call it. Every input
 * must give a value or nil, message: no crash, no leak, no Lua panic. */
#include <stdint.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();
  if (!L)
    return 0;
  luaL_openlibs(L);
  lua_pushcfunction(L, fl_lua_open_yaml);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "load");
  lua_pushlstring(L, (const char *)data, size);
  lua_pushliteral(L, "fuzz.yaml");
  if (fl_lua_pcall(L, 2, 2) != LUA_OK)
    abort(); /* load reports bad input as nil, message; it never raises */
  lua_close(L);
  return 0;
}
