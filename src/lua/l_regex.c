/*
 * l_regex.c - the Lua `regex` module: core.regex, POSIX extended regular
 * expressions (regcomp/regexec, REG_EXTENDED | REG_NOSUB).
 *
 *   regex.compile(pattern) -> re | nil, msg, "INVALID"
 *   re:match(s)            -> boolean (a search: anchor with ^...$)
 *   re:pattern()           -> the source pattern
 *   re:close()             -> frees it now (also __gc, __close)
 *
 * Lua's patterns are not regular expressions; configuration files and
 * filters use these so that users can write the syntax they know from grep.
 */
#include <regex.h>
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

#define REGEX_CLASS "freightliner.regex"

typedef struct lregex {
  regex_t re;
  int compiled;
} lregex;

static int l_compile(lua_State *L) {
  size_t len;
  const char *pattern = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, strlen(pattern) == len, 1,
                "a regular expression may not contain NUL bytes");
  lregex *r = lua_newuserdatauv(L, sizeof *r, 1);
  r->compiled = 0;
  luaL_setmetatable(L, REGEX_CLASS);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  int rc = regcomp(&r->re, pattern, REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char why[256];
    regerror(rc, &r->re, why, sizeof why);
    /* regcomp frees what it allocated when it fails */
    return fl_lua_failf(L, FL_EINVALID, "invalid regular expression '%s': %s",
                        pattern, why);
  }
  r->compiled = 1;
  return 1;
}

static lregex *check_open(lua_State *L) {
  lregex *r = luaL_checkudata(L, 1, REGEX_CLASS);
  luaL_argcheck(L, r->compiled, 1, "regular expression is closed");
  return r;
}

static int l_match(lua_State *L) {
  lregex *r = check_open(L);
  const char *s = luaL_checkstring(L, 2);
  lua_pushboolean(L, regexec(&r->re, s, 0, NULL, 0) == 0);
  return 1;
}

static int l_pattern(lua_State *L) {
  luaL_checkudata(L, 1, REGEX_CLASS);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int l_close(lua_State *L) {
  lregex *r = luaL_checkudata(L, 1, REGEX_CLASS);
  if (r->compiled) {
    regfree(&r->re);
    r->compiled = 0;
  }
  return 0;
}

static int l_tostring(lua_State *L) {
  lregex *r = luaL_checkudata(L, 1, REGEX_CLASS);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "regex /%s/%s", lua_tostring(L, -1),
                  r->compiled ? "" : " (closed)");
  return 1;
}

int fl_lua_open_regex(lua_State *L) {
  static const luaL_Reg methods[] = {{"match", l_match},
                                     {"pattern", l_pattern},
                                     {"close", l_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_close},
                                  {"__close", l_close},
                                  {"__tostring", l_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"compile", l_compile}, {NULL, NULL}};
  fl_lua_new_class(L, REGEX_CLASS, methods, meta);
  luaL_newlib(L, funcs);
  return 1;
}
