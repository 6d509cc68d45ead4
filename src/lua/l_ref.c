/*
 * l_ref.c - the Lua `ref` module: core.ref, image reference parsing.
 *
 *   ref.parse(s)             -> table | nil, msg, "INVALID"
 *   ref.parse_repository(s)  -> table (no tag or digest allowed)
 *   ref.is_loopback(host)    -> boolean
 *   ref.check_repository(s)  -> true | nil, msg, "INVALID"
 *   ref.check_tag(s)         -> true | nil, msg, "INVALID"
 *   ref.check_digest(s)      -> true | nil, msg, "INVALID"|"UNSUPPORTED"
 *
 * The check_* functions are the one grammar (reference.c) of a repository
 * name as it appears in a registry URL (no domain), a tag and a digest, for
 * Lua code that checks one of them alone (config, remote tag lists).
 *
 * The table: domain, api_host, repository, tag (or nil), digest (or nil),
 * tag_defaulted, name ("domain/repository"), string (the full form) and
 * familiar (as the docker CLI prints it).
 */
#include "lua/bindings.h"
#include "lua/lua_util.h"
#include "registry/reference.h"

static void push_ref(lua_State *L, const fl_ref *r) {
  char buf[1024];
  lua_createtable(L, 0, 9);
  fl_lua_setfield_str(L, -1, "domain", r->domain);
  fl_lua_setfield_str(L, -1, "api_host", r->api_host);
  fl_lua_setfield_str(L, -1, "repository", r->path);
  if (r->tag[0])
    fl_lua_setfield_str(L, -1, "tag", r->tag);
  if (r->digest[0])
    fl_lua_setfield_str(L, -1, "digest", r->digest);
  lua_pushboolean(L, r->tag_defaulted);
  lua_setfield(L, -2, "tag_defaulted");
  fl_ref_name(r, buf, sizeof buf);
  fl_lua_setfield_str(L, -1, "name", buf);
  fl_ref_format(r, buf, sizeof buf);
  fl_lua_setfield_str(L, -1, "string", buf);
  fl_ref_familiar(r, buf, sizeof buf);
  fl_lua_setfield_str(L, -1, "familiar", buf);
}

static int parse_with(lua_State *L,
                      fl_code (*parse)(const char *, fl_ref *, fl_error *)) {
  const char *s = luaL_checkstring(L, 1);
  fl_ref r;
  fl_error err;
  if (parse(s, &r, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  push_ref(L, &r);
  return 1;
}

static int l_parse(lua_State *L) { return parse_with(L, fl_ref_parse); }

static int l_parse_repository(lua_State *L) {
  return parse_with(L, fl_ref_parse_repository);
}

static int check_with(lua_State *L,
                      fl_code (*check)(const char *, fl_error *)) {
  const char *s = luaL_checkstring(L, 1);
  fl_error err;
  if (check(s, &err) != FL_OK)
    return fl_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static fl_code check_digest(const char *s, fl_error *err) {
  return fl_ref_check_digest(s, NULL, err);
}

static int l_check_repository(lua_State *L) {
  return check_with(L, fl_ref_check_repository);
}

static int l_check_tag(lua_State *L) { return check_with(L, fl_ref_check_tag); }

static int l_check_digest(lua_State *L) { return check_with(L, check_digest); }

static int l_is_loopback(lua_State *L) {
  lua_pushboolean(L, fl_host_is_loopback(luaL_checkstring(L, 1)));
  return 1;
}

int fl_lua_open_ref(lua_State *L) {
  static const luaL_Reg funcs[] = {{"parse", l_parse},
                                   {"parse_repository", l_parse_repository},
                                   {"is_loopback", l_is_loopback},
                                   {"check_repository", l_check_repository},
                                   {"check_tag", l_check_tag},
                                   {"check_digest", l_check_digest},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
