/*
 * l_log.c - the Lua `log` module: core.log, the C logger (core/log.h) for
 * Lua, so that lines from C and from Lua look the same.
 *
 *   log.set_level(name)        name: debug|info|warn|error|off
 *   log.get_level()            -> name
 *   log.set_json(bool)         one JSON object per line
 *   log.set_run_id(id)         correlates every line of a run
 *   log.enabled(name)          -> boolean
 *   log.log(level, message [, image [, fields]])
 *       fields: more members of a JSON line, encoded by the caller as
 *       JSON object members without braces ('"images_failed":1')
 *
 * An unknown level name is an argument error.
 */
#include "core/log.h"
#include "lua/bindings.h"
#include "lua/lua_util.h"

static fl_log_level check_level(lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  int level = fl_log_level_from_name(name);
  if (level < 0)
    luaL_argerror(L, arg,
                  lua_pushfstring(L,
                                  "unknown log level '%s' (expected debug, "
                                  "info, warn, error or off)",
                                  name));
  return (fl_log_level)level;
}

static int l_set_level(lua_State *L) {
  fl_log_set_level(check_level(L, 1));
  return 0;
}

static int l_get_level(lua_State *L) {
  lua_pushstring(L, fl_log_level_name(fl_log_get_level()));
  return 1;
}

static int l_set_json(lua_State *L) {
  fl_log_set_json(lua_toboolean(L, 1));
  return 0;
}

static int l_set_run_id(lua_State *L) {
  fl_log_set_run_id(luaL_optstring(L, 1, ""));
  return 0;
}

static int l_enabled(lua_State *L) {
  lua_pushboolean(L, fl_log_enabled(check_level(L, 1)));
  return 1;
}

static int l_log(lua_State *L) {
  fl_log_level level = check_level(L, 1);
  luaL_argcheck(L, level != FL_LOG_OFF, 1, "'off' is not a level to log at");
  const char *msg = luaL_checkstring(L, 2);
  const char *image = luaL_optstring(L, 3, NULL);
  const char *fields = luaL_optstring(L, 4, NULL);
  fl_log_fields(level, image, fields, "%s", msg);
  return 0;
}

int fl_lua_open_log(lua_State *L) {
  static const luaL_Reg funcs[] = {{"set_level", l_set_level},
                                   {"get_level", l_get_level},
                                   {"set_json", l_set_json},
                                   {"set_run_id", l_set_run_id},
                                   {"enabled", l_enabled},
                                   {"log", l_log},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
