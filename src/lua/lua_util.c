/*
 * lua_util.c - shared helpers for the Lua bindings (see lua_util.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "lua/lua_util.h"

int fl_lua_fail(lua_State *L, const fl_error *err) {
  lua_pushnil(L);
  lua_pushstring(L, err->msg);
  lua_pushstring(L, fl_code_name(err->code));
  return 3;
}

int fl_lua_failf(lua_State *L, fl_code code, const char *fmt, ...) {
  fl_error err;
  va_list ap;
  err.code = code;
  va_start(ap, fmt);
  vsnprintf(err.msg, sizeof err.msg, fmt, ap);
  va_end(ap);
  return fl_lua_fail(L, &err);
}

static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int fl_lua_pcall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

void fl_lua_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      const luaL_Reg *metamethods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

void fl_lua_setfield_int(lua_State *L, int t, const char *name, lua_Integer v) {
  t = lua_absindex(L, t);
  lua_pushinteger(L, v);
  lua_setfield(L, t, name);
}

void fl_lua_setfield_str(lua_State *L, int t, const char *name, const char *v) {
  t = lua_absindex(L, t);
  lua_pushstring(L, v);
  lua_setfield(L, t, name);
}

void fl_lua_submodule(lua_State *L, const char *name, lua_CFunction open) {
  lua_pushcfunction(L, open);
  lua_call(L, 0, 1);
  lua_setfield(L, -2, name);
}

#define OWNED_CLASS "freightliner.owned"

void fl_lua_owned_release(fl_lua_owned *box) {
  if (box->ptr && box->release)
    box->release(box->ptr);
  box->ptr = NULL;
}

static int owned_gc(lua_State *L) {
  fl_lua_owned_release(luaL_checkudata(L, 1, OWNED_CLASS));
  return 0;
}

fl_lua_owned *fl_lua_push_owned(lua_State *L, void (*release)(void *ptr)) {
  fl_lua_owned *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->ptr = NULL;
  box->release = release;
  if (luaL_newmetatable(L, OWNED_CLASS)) {
    lua_pushcfunction(L, owned_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, owned_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  return box;
}
