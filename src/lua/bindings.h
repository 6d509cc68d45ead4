/*
 * bindings.h - the Lua-visible modules of the C core.
 *
 * Each fl_lua_open_* builds one submodule table of freightliner.core (one
 * file per module in src/lua/l_*.c); module.c assembles them into the table
 * that require("freightliner.core") returns.
 */
#ifndef FL_LUA_BINDINGS_H
#define FL_LUA_BINDINGS_H

#include <lua.h>

int fl_lua_open_digest(lua_State *L);
int fl_lua_open_ref(lua_State *L);
int fl_lua_open_endpoint(lua_State *L);
int fl_lua_open_engine(lua_State *L);
/* Push core.defaults: every tunable default (core/defaults.h). */
int fl_lua_push_defaults(lua_State *L);
int fl_lua_open_yaml(lua_State *L);
int fl_lua_open_regex(lua_State *L);
int fl_lua_open_fs(lua_State *L);
int fl_lua_open_readline(lua_State *L);
int fl_lua_open_log(lua_State *L);
int fl_lua_open_created(lua_State *L);
int fl_lua_open_json(lua_State *L);
int fl_lua_open_trust(lua_State *L);
int fl_lua_open_archive(lua_State *L);
int fl_lua_open_serve(lua_State *L);
int fl_lua_open_journal(lua_State *L);

/* The endpoint at stack index idx (argument error if not one or closed). */
struct fl_endpoint *fl_lua_check_endpoint(lua_State *L, int idx);
/* Push an endpoint userdata that owns ep (freed by its __gc/close). */
void fl_lua_push_endpoint(lua_State *L, struct fl_endpoint *ep);

#endif
