/*
 * l_json.c - the Lua `json` module: core.json, JSON on jansson (linked into
 * the binary already), so the stdlib needs no Lua C module from the system.
 *
 *   json.decode(s) -> value | nil, msg, "INVALID"
 *   json.encode(v) -> string | nil, msg, "INVALID"
 *   json.null      -> the null value (a light userdata, == yaml.null)
 *
 * Integers stay integers both ways; other numbers are encoded with 14
 * significant digits (as lua-cjson did). A table is a JSON array when its
 * keys are exactly 1..n (n >= 1), otherwise an object (integer keys become
 * strings; other key types are refused); an empty table is {}, unless its
 * metatable has __jsontype = "array" (json.array in Lua): then []. NaN,
 * infinities, functions and nesting deeper than JSON_DEPTH_MAX are refused.
 * The jansson tree of a call is held by an fl_lua_owned box, so a Lua error
 * (out of memory) while converting cannot leak it.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

#define JSON_DEPTH_MAX 512

static void json_release(void *p) { json_decref(p); }

/* ---- decode ------------------------------------------------------------- */

static void push_json(lua_State *L, json_t *v, int depth) {
  luaL_checkstack(L, 4, "JSON too deep");
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    lua_createtable(L, 0, (int)json_object_size(v));
    const char *key;
    size_t klen;
    json_t *x;
    json_object_keylen_foreach(v, key, klen, x) {
      lua_pushlstring(L, key, klen);
      push_json(L, x, depth + 1);
      lua_rawset(L, -3);
    }
    break;
  }
  case JSON_ARRAY: {
    size_t i;
    json_t *x;
    lua_createtable(L, (int)json_array_size(v), 0);
    json_array_foreach(v, i, x) {
      push_json(L, x, depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(v));
    break;
  case JSON_REAL:
    lua_pushnumber(L, json_real_value(v));
    break;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    break;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    break;
  case JSON_NULL:
    lua_pushlightuserdata(L, NULL);
    break;
  }
}

static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  json_error_t jerr;
  json_t *root = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (root == NULL)
    return fl_lua_failf(L, FL_EINVALID, "%s at line %d, column %d", jerr.text,
                        jerr.line, jerr.column);
  fl_lua_owned *box = fl_lua_push_owned(L, json_release);
  box->ptr = root;
  push_json(L, root, 0);
  fl_lua_owned_release(box);
  return 1;
}

/* ---- encode ------------------------------------------------------------- */

/* Build the jansson value of the Lua value at idx; NULL with *why set (a
 * static message) when it cannot be encoded; the partial tree is freed
 * first. Only Lua API calls that raise nothing but out-of-memory are used
 * (lua_next, lua_rawgeti, lua_tolstring on strings, luaL_getmetafield), and
 * the stack is grown with lua_checkstack, which does not raise. */
static json_t *to_json(lua_State *L, int idx, int depth, const char **why);

static json_t *table_to_json(lua_State *L, int idx, int depth,
                             const char **why) {
  idx = lua_absindex(L, idx);
  if (luaL_getmetafield(L, idx, "__jsontype") != LUA_TNIL) {
    int is_array = lua_type(L, -1) == LUA_TSTRING &&
                   strcmp(lua_tostring(L, -1), "array") == 0;
    lua_pop(L, 1);
    if (is_array) {
      /* json.array(t): a list, even when empty */
      json_t *a = json_array();
      if (!a)
        return *why = "out of memory", NULL;
      lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
      for (lua_Integer i = 1; i <= len; i++) {
        lua_rawgeti(L, idx, i);
        json_t *x = to_json(L, -1, depth + 1, why);
        lua_pop(L, 1);
        if (!x || json_array_append_new(a, x) != 0) {
          json_decref(a);
          if (!*why)
            *why = "out of memory";
          return NULL;
        }
      }
      return a;
    }
  }
  lua_Integer n = 0;
  size_t count = 0;
  int array = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k < 1)
        array = 0;
      else if (k > n)
        n = k;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      array = 0;
    } else {
      lua_pop(L, 1);
      *why = "a table key must be a string or an integer";
      return NULL;
    }
  }
  if (array && count > 0 && (size_t)n == count) {
    json_t *a = json_array();
    if (!a)
      return *why = "out of memory", NULL;
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      json_t *x = to_json(L, -1, depth + 1, why);
      lua_pop(L, 1);
      if (!x || json_array_append_new(a, x) != 0) {
        json_decref(a);
        if (!*why)
          *why = "out of memory";
        return NULL;
      }
    }
    return a;
  }
  json_t *o = json_object();
  if (!o)
    return *why = "out of memory", NULL;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    char num[32];
    const char *key;
    size_t klen;
    if (lua_type(L, -2) == LUA_TSTRING) {
      key = lua_tolstring(L, -2, &klen);
    } else {
      snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -2));
      key = num;
      klen = strlen(num);
    }
    json_t *x = to_json(L, -1, depth + 1, why);
    lua_pop(L, 1);
    if (!x || json_object_setn_new(o, key, klen, x) != 0) {
      lua_pop(L, 1);
      json_decref(o);
      if (!*why)
        *why = "out of memory";
      return NULL;
    }
  }
  return o;
}

static json_t *to_json(lua_State *L, int idx, int depth, const char **why) {
  if (depth > JSON_DEPTH_MAX)
    return *why = "nesting is too deep (or a table contains itself)", NULL;
  /* lua_checkstack, not luaL_checkstack: no Lua error while the partial
   * tree is held only by C */
  if (!lua_checkstack(L, 4))
    return *why = "nesting is too deep for the Lua stack", NULL;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return json_null();
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? json_true() : json_false();
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      return json_integer((json_int_t)lua_tointeger(L, idx));
    if (!isfinite(lua_tonumber(L, idx)))
      return *why = "a number must not be NaN or infinite", NULL;
    return json_real(lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    json_t *v = json_stringn_nocheck(s, len);
    return v ? v : (*why = "out of memory", NULL);
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL)
      return json_null();
    break;
  case LUA_TTABLE:
    return table_to_json(L, idx, depth, why);
  default:
    break;
  }
  *why = "only nil, booleans, numbers, strings, tables and json.null can be "
         "encoded";
  return NULL;
}

static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  fl_lua_owned *box = fl_lua_push_owned(L, json_release); /* 2 */
  const char *why = NULL;
  json_t *root = to_json(L, 1, 0, &why);
  if (root == NULL)
    return fl_lua_failf(L, FL_EINVALID, "cannot encode JSON: %s", why);
  box->ptr = root;
  char *s = json_dumps(root, JSON_ENCODE_ANY | JSON_COMPACT |
                                 JSON_ESCAPE_SLASH | JSON_REAL_PRECISION(14));
  if (s == NULL)
    return fl_lua_failf(L, FL_ENOMEM, "cannot encode JSON: out of memory");
  lua_pushstring(L, s);
  free(s);
  fl_lua_owned_release(box);
  return 1;
}

int fl_lua_open_json(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"decode", l_decode}, {"encode", l_encode}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
