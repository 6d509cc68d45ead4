/*
 * l_regex.c - the Lua `regex` module: core.regex, PCRE2 regular
 * expressions (the syntax of Perl, PCRE, RE2/Go and JavaScript for the
 * common cases: \d \w \s, (?i), non-greedy *? +?, (?:...), {m,n}).
 *
 *   regex.compile(pattern) -> re | nil, msg, "INVALID", offset
 *       offset: 0-based byte offset of the offending character
 *   re:match(s)            -> boolean (a search: anchor with ^...$)
 *   re:find(s)             -> start, end, captures... | nil (1-based)
 *   re:pattern()           -> the source pattern
 *   re:close()             -> frees it now (also __gc, __close)
 *
 * Every regex key of a sync file (tags.regex, tags.exclude_regex,
 * source.repository_regex) and the Lua API go through here, so the syntax
 * and the anchoring (none: a search, as Go's MatchString) are the same
 * everywhere. A match is bounded (match and depth limits), so a pattern
 * with catastrophic backtracking fails to match rather than hanging; the
 * subject is UTF-8 or bytes (invalid UTF-8 never matches a multi-byte
 * character but never fails either). One compiled pattern belongs to the
 * lua_State that made it (its match data is reused).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

#define REGEX_CLASS "freightliner.regex"
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u

typedef struct lregex {
  pcre2_code *code;
  pcre2_match_data *md;
  pcre2_match_context *mc;
} lregex;

static void release(lregex *r) {
  pcre2_match_data_free(r->md);
  pcre2_match_context_free(r->mc);
  pcre2_code_free(r->code);
  r->md = NULL;
  r->mc = NULL;
  r->code = NULL;
}

static int l_compile(lua_State *L) {
  size_t len;
  const char *pattern = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, strlen(pattern) == len, 1,
                "a regular expression may not contain NUL bytes");
  lregex *r = lua_newuserdatauv(L, sizeof *r, 1);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, REGEX_CLASS);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  int errcode;
  PCRE2_SIZE erroffset;
  r->code = pcre2_compile((PCRE2_SPTR)pattern, len,
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
                              PCRE2_NEVER_BACKSLASH_C,
                          &errcode, &erroffset, NULL);
  if (r->code == NULL) {
    PCRE2_UCHAR why[256];
    if (pcre2_get_error_message(errcode, why, sizeof why) < 0)
      strcpy((char *)why, "unknown error");
    fl_lua_failf(L, FL_EINVALID,
                 "invalid regular expression '%s' at character %lu: %s",
                 pattern, (unsigned long)erroffset + 1, (const char *)why);
    lua_pushinteger(L, (lua_Integer)erroffset);
    return 4;
  }
  r->md = pcre2_match_data_create_from_pattern(r->code, NULL);
  r->mc = pcre2_match_context_create(NULL);
  if (r->md == NULL || r->mc == NULL) {
    release(r);
    return fl_lua_failf(L, FL_ENOMEM, "out of memory compiling '%s'", pattern);
  }
  pcre2_set_match_limit(r->mc, MATCH_LIMIT);
  pcre2_set_depth_limit(r->mc, DEPTH_LIMIT);
  return 1;
}

static lregex *check_open(lua_State *L) {
  lregex *r = luaL_checkudata(L, 1, REGEX_CLASS);
  luaL_argcheck(L, r->code != NULL, 1, "regular expression is closed");
  return r;
}

/* Run the pattern on argument 2; the number of pairs in the ovector, or 0
 * for no match (a limit hit counts as no match). */
static int run(lua_State *L, lregex *r, const char **s) {
  size_t len;
  *s = luaL_checklstring(L, 2, &len);
  int rc = pcre2_match(r->code, (PCRE2_SPTR)*s, len, 0, 0, r->md, r->mc);
  return rc > 0 ? rc : 0;
}

static int l_match(lua_State *L) {
  lregex *r = check_open(L);
  const char *s;
  lua_pushboolean(L, run(L, r, &s) > 0);
  return 1;
}

static int l_find(lua_State *L) {
  lregex *r = check_open(L);
  const char *s;
  int n = run(L, r, &s);
  if (n == 0) {
    lua_pushnil(L);
    return 1;
  }
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
  luaL_checkstack(L, n + 1, "too many captures");
  lua_pushinteger(L, (lua_Integer)ov[0] + 1);
  lua_pushinteger(L, (lua_Integer)ov[1]);
  for (int i = 1; i < n; i++) {
    if (ov[2 * i] == PCRE2_UNSET)
      lua_pushboolean(L, 0);
    else
      lua_pushlstring(L, s + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
  }
  return n + 1;
}

static int l_pattern(lua_State *L) {
  luaL_checkudata(L, 1, REGEX_CLASS);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int l_close(lua_State *L) {
  lregex *r = luaL_checkudata(L, 1, REGEX_CLASS);
  release(r);
  return 0;
}

static int l_tostring(lua_State *L) {
  lregex *r = luaL_checkudata(L, 1, REGEX_CLASS);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "regex /%s/%s", lua_tostring(L, -1),
                  r->code ? "" : " (closed)");
  return 1;
}

int fl_lua_open_regex(lua_State *L) {
  static const luaL_Reg methods[] = {{"match", l_match},
                                     {"find", l_find},
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
