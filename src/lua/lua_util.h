/*
 * lua_util.h - shared helpers for the Lua bindings in src/lua/.
 *
 * The bindings follow one set of rules, and these helpers are how they keep
 * them: expected failures return `nil, message, CODE` (fl_lua_fail); misuse
 * raises an argument error (luaL_arg*); every call from C into Lua goes
 * through fl_lua_pcall, which adds a traceback; every C object handed to Lua
 * is a userdata whose metatable has __gc, __close (the same idempotent
 * release) and __tostring (fl_lua_new_class).
 */
#ifndef FL_LUA_UTIL_H
#define FL_LUA_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "freightliner.h"

/* Push nil, err->msg, CODE and return 3 (for `return fl_lua_fail(L, &e);`). */
int fl_lua_fail(lua_State *L, const fl_error *err);
/* Same from a code and a formatted message. */
int fl_lua_failf(lua_State *L, fl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The one protected call from C into Lua: like lua_pcall, with a message
 * handler that appends a traceback. On error the message (with traceback)
 * is left on the stack and LUA_ERR* is returned. */
int fl_lua_pcall(lua_State *L, int nargs, int nresults);

/* Create metatable `name` with __index = methods, and the given metamethods
 * (which should include __gc, __close and __tostring). Leaves nothing on the
 * stack. */
void fl_lua_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      const luaL_Reg *metamethods);

/* Set t[name] = value-at-top for the table at index t (pops the value). */
void fl_lua_setfield_int(lua_State *L, int t, const char *name, lua_Integer v);
void fl_lua_setfield_str(lua_State *L, int t, const char *name, const char *v);

/* Register a submodule: calls open(L) and stores the result in the table at
 * the top of the stack under `name`. */
void fl_lua_submodule(lua_State *L, const char *name, lua_CFunction open);

/* A heap resource owned by a userdata, so that a Lua error (even out of
 * memory while pushing results) can never leak it: push the box first, then
 * acquire the resource into box->ptr; __gc/__close call box->release. */
typedef struct fl_lua_owned {
  void *ptr;
  void (*release)(void *ptr);
} fl_lua_owned;

fl_lua_owned *fl_lua_push_owned(lua_State *L, void (*release)(void *ptr));
/* Release now (idempotent). */
void fl_lua_owned_release(fl_lua_owned *box);

#endif
