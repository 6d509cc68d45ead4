/*
 * l_yaml.c - the Lua `yaml` module: core.yaml, YAML text into Lua tables.
 *
 *   yaml.load(text [, filename]) -> value, positions | nil, msg, "INVALID"
 *   yaml.null                     -> the null value (== cjson.null)
 *
 * One document (an empty stream gives yaml.null). Plain scalars are typed as
 * the YAML 1.2 core schema says (null, ~, true/false, ints incl. 0x/0o,
 * floats incl. .inf/.nan, else strings); quoted and block scalars, and
 * anything tagged !!str, stay strings. Nulls are yaml.null so that keys with
 * empty values are kept. Mapping keys are scalars (typed the same way);
 * duplicate, null and complex keys are errors. Aliases copy the anchored
 * value; at most FL_YAML_ALIAS_NODES nodes may come from aliases (the
 * "billion laughs" guard) and nesting is limited to FL_YAML_MAX_DEPTH.
 *
 * positions (weak keys) maps every mapping and sequence table to
 *   { line =, column =, keys = { [k] = {line, column} },
 *     values = { [k] = {line, column} } }
 * with 1-based lines and columns of the container, of each key and of each
 * value (for sequences keys[i] == values[i]). Errors read
 * "FILE:LINE:COLUMN: message".
 *
 * The parser and the current event live in an fl_lua_owned box, so neither
 * leaks when a Lua error (out of memory) unwinds through the loader.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

#define FL_YAML_MAX_DEPTH 64
#define FL_YAML_ALIAS_NODES 10000

typedef struct yaml_state {
  yaml_parser_t parser;
  yaml_event_t event;
  int parser_ready;
  int has_event;
} yaml_state;

/* One load: the stack slots it uses and its counters. */
typedef struct loader {
  lua_State *L;
  yaml_state *ys;
  const char *filename;
  int positions; /* stack index: the positions table */
  int anchors;   /* stack index: anchor name -> {value, nodes} */
  long nodes;    /* nodes built so far (incl. alias copies) */
  long alias_nodes;
  char err[FL_ERROR_MSG_MAX];
  int failed;
} loader;

static void yaml_state_release(void *p) {
  yaml_state *ys = p;
  if (ys->has_event)
    yaml_event_delete(&ys->event);
  if (ys->parser_ready)
    yaml_parser_delete(&ys->parser);
  free(ys);
}

static void fail_at(loader *ld, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(loader *ld, yaml_mark_t mark, const char *fmt, ...) {
  if (ld->failed)
    return;
  char msg[FL_ERROR_MSG_MAX / 2];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(ld->err, sizeof ld->err, "%.200s:%lu:%lu: %s", ld->filename,
           (unsigned long)mark.line + 1, (unsigned long)mark.column + 1, msg);
  ld->failed = 1;
}

static void fail_parser(loader *ld) {
  yaml_parser_t *p = &ld->ys->parser;
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->context)
    fail_at(ld, p->problem_mark, "%s (%s at line %lu, column %lu)", problem,
            p->context, (unsigned long)p->context_mark.line + 1,
            (unsigned long)p->context_mark.column + 1);
  else
    fail_at(ld, p->problem_mark, "%s", problem);
}

/* Read the next event into ld->ys->event (deleting the previous one). */
static int next_event(loader *ld) {
  yaml_state *ys = ld->ys;
  if (ys->has_event) {
    yaml_event_delete(&ys->event);
    ys->has_event = 0;
  }
  if (!yaml_parser_parse(&ys->parser, &ys->event)) {
    fail_parser(ld);
    return 0;
  }
  ys->has_event = 1;
  return 1;
}

/* ---- scalars ------------------------------------------------------------ */

static int all_of(const char *s, const char *set) {
  if (!*s)
    return 0;
  return strspn(s, set) == strlen(s);
}

static int is_float_syntax(const char *s) {
  /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
  const char *p = s;
  int digits = 0;
  if (*p == '-' || *p == '+')
    p++;
  while (*p >= '0' && *p <= '9') {
    p++;
    digits++;
  }
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') {
      p++;
      digits++;
    }
  }
  if (!digits)
    return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+')
      p++;
    if (!(*p >= '0' && *p <= '9'))
      return 0;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return *p == '\0';
}

static int push_integer_text(lua_State *L, const char *s, int base) {
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, base);
  if (*end != '\0')
    return 0;
  if (errno == ERANGE) /* too big for an integer: keep the magnitude */
    lua_pushnumber(L, strtod(s, NULL));
  else
    lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* Push the typed value of a plain scalar (core schema). */
static void push_plain(lua_State *L, const char *s, size_t len) {
  if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
      strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0) {
    lua_pushlightuserdata(L, NULL);
    return;
  }
  if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
      strcmp(s, "TRUE") == 0) {
    lua_pushboolean(L, 1);
    return;
  }
  if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
      strcmp(s, "FALSE") == 0) {
    lua_pushboolean(L, 0);
    return;
  }
  if (strlen(s) == len) {
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (all_of(d, "0123456789") && push_integer_text(L, s, 10))
      return;
    if (strncmp(s, "0o", 2) == 0 && all_of(s + 2, "01234567") &&
        push_integer_text(L, s + 2, 8))
      return;
    if (strncmp(s, "0x", 2) == 0 && all_of(s + 2, "0123456789abcdefABCDEF") &&
        push_integer_text(L, s + 2, 16))
      return;
    if (is_float_syntax(s)) {
      lua_pushnumber(L, strtod(s, NULL));
      return;
    }
    const char *inf = (*s == '-' || *s == '+') ? s + 1 : s;
    if (strcmp(inf, ".inf") == 0 || strcmp(inf, ".Inf") == 0 ||
        strcmp(inf, ".INF") == 0) {
      lua_pushnumber(L, *s == '-' ? -HUGE_VAL : HUGE_VAL);
      return;
    }
    if (strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0 ||
        strcmp(s, ".NAN") == 0) {
      lua_pushnumber(L, NAN);
      return;
    }
  }
  lua_pushlstring(L, s, len);
}

static void push_scalar(loader *ld) {
  yaml_event_t *ev = &ld->ys->event;
  const char *s = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  const char *tag = (const char *)ev->data.scalar.tag;
  if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
      (tag && strcmp(tag, YAML_STR_TAG) == 0))
    lua_pushlstring(ld->L, s, len);
  else
    push_plain(ld->L, s, len);
}

/* ---- positions ---------------------------------------------------------- */

static void push_mark(lua_State *L, yaml_mark_t m) {
  lua_createtable(L, 0, 2);
  fl_lua_setfield_int(L, -1, "line", (lua_Integer)m.line + 1);
  fl_lua_setfield_int(L, -1, "column", (lua_Integer)m.column + 1);
}

/* positions[container] = {line, column, keys = {}, values = {}}; leaves the
 * record on the stack. The container is at the top of the stack. */
static void new_position(loader *ld, yaml_mark_t m) {
  lua_State *L = ld->L;
  push_mark(L, m);
  lua_newtable(L);
  lua_setfield(L, -2, "keys");
  lua_newtable(L);
  lua_setfield(L, -2, "values");
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lua_rawset(L, ld->positions);
}

/* record.field[key] = mark; record at index rec, key at index key. */
static void set_mark(lua_State *L, int rec, const char *field, int key,
                     yaml_mark_t m) {
  lua_getfield(L, rec, field);
  lua_pushvalue(L, key);
  push_mark(L, m);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* ---- nodes -------------------------------------------------------------- */

static int parse_node(loader *ld, int depth);

/* Deep copy of the value at the top of the stack (tables only), giving the
 * copies the positions of their originals. Replaces the top. The recursion
 * is bounded: an anchored value was built within FL_YAML_MAX_DEPTH. */
static void copy_value(loader *ld) {
  lua_State *L = ld->L;
  if (!lua_istable(L, -1))
    return;
  luaL_checkstack(L, 8, "YAML nesting");
  int src = lua_gettop(L);
  lua_newtable(L);
  int dst = src + 1;
  lua_pushnil(L);
  while (lua_next(L, src)) {
    copy_value(ld);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, dst);
  }
  lua_pushvalue(L, src);
  lua_rawget(L, ld->positions);
  if (!lua_isnil(L, -1)) {
    lua_pushvalue(L, dst);
    lua_insert(L, -2);
    lua_rawset(L, ld->positions);
  } else {
    lua_pop(L, 1);
  }
  lua_remove(L, src);
}

static int parse_alias(loader *ld) {
  lua_State *L = ld->L;
  yaml_event_t *ev = &ld->ys->event;
  yaml_mark_t mark = ev->start_mark;
  const char *name = (const char *)ev->data.alias.anchor;
  lua_getfield(L, ld->anchors, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    fail_at(ld, mark, "alias '*%s' refers to no complete anchor", name);
    return 0;
  }
  lua_geti(L, -1, 2);
  long n = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  ld->alias_nodes += n;
  ld->nodes += n;
  if (ld->alias_nodes > FL_YAML_ALIAS_NODES) {
    lua_pop(L, 1);
    fail_at(ld, mark,
            "aliases expand to more than %d nodes (refusing a possible "
            "alias bomb)",
            FL_YAML_ALIAS_NODES);
    return 0;
  }
  lua_geti(L, -1, 1);
  lua_remove(L, -2);
  copy_value(ld);
  return 1;
}

/* Remember the value at the top of the stack under its anchor. */
static void set_anchor(loader *ld, const char *anchor, long first_node) {
  lua_State *L = ld->L;
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, ld->nodes - first_node);
  lua_rawseti(L, -2, 2);
  lua_setfield(L, ld->anchors, anchor);
}

static int key_ok(loader *ld, int key, yaml_mark_t mark) {
  lua_State *L = ld->L;
  if (lua_islightuserdata(L, key)) {
    fail_at(ld, mark, "a mapping key may not be null");
    return 0;
  }
  if (lua_type(L, key) == LUA_TNUMBER &&
      lua_tonumber(L, key) != lua_tonumber(L, key)) {
    fail_at(ld, mark, "a mapping key may not be NaN");
    return 0;
  }
  if (lua_istable(L, key)) {
    fail_at(ld, mark, "complex mapping keys are not supported");
    return 0;
  }
  return 1;
}

static int parse_mapping(loader *ld, int depth) {
  lua_State *L = ld->L;
  lua_newtable(L);
  int t = lua_gettop(L);
  new_position(ld, ld->ys->event.start_mark);
  int rec = t + 1;
  for (;;) {
    if (!next_event(ld))
      return 0;
    yaml_event_t *ev = &ld->ys->event;
    if (ev->type == YAML_MAPPING_END_EVENT)
      break;
    yaml_mark_t kmark = ev->start_mark;
    if (ev->type == YAML_MAPPING_START_EVENT ||
        ev->type == YAML_SEQUENCE_START_EVENT) {
      fail_at(ld, kmark, "complex mapping keys are not supported");
      return 0;
    }
    if (!parse_node(ld, depth + 1))
      return 0;
    int key = lua_gettop(L);
    if (!key_ok(ld, key, kmark))
      return 0;
    lua_pushvalue(L, key);
    if (lua_rawget(L, t) != LUA_TNIL) {
      fail_at(ld, kmark, "duplicate key '%s'", luaL_tolstring(L, key, NULL));
      return 0;
    }
    lua_pop(L, 1);
    if (!next_event(ld))
      return 0;
    yaml_mark_t vmark = ld->ys->event.start_mark;
    if (!parse_node(ld, depth + 1))
      return 0;
    set_mark(L, rec, "keys", key, kmark);
    set_mark(L, rec, "values", key, vmark);
    lua_rawset(L, t);
  }
  lua_pop(L, 1); /* the record */
  return 1;
}

static int parse_sequence(loader *ld, int depth) {
  lua_State *L = ld->L;
  lua_newtable(L);
  int t = lua_gettop(L);
  new_position(ld, ld->ys->event.start_mark);
  int rec = t + 1;
  for (lua_Integer i = 1;; i++) {
    if (!next_event(ld))
      return 0;
    if (ld->ys->event.type == YAML_SEQUENCE_END_EVENT)
      break;
    yaml_mark_t vmark = ld->ys->event.start_mark;
    if (!parse_node(ld, depth + 1))
      return 0;
    lua_pushinteger(L, i);
    int key = lua_gettop(L);
    set_mark(L, rec, "keys", key, vmark);
    set_mark(L, rec, "values", key, vmark);
    lua_pop(L, 1);
    lua_rawseti(L, t, i);
  }
  lua_pop(L, 1);
  return 1;
}

/* Parse the node whose first event is current; push its value. */
static int parse_node(loader *ld, int depth) {
  lua_State *L = ld->L;
  yaml_event_t *ev = &ld->ys->event;
  if (depth > FL_YAML_MAX_DEPTH) {
    fail_at(ld, ev->start_mark, "nesting deeper than %d levels",
            FL_YAML_MAX_DEPTH);
    return 0;
  }
  luaL_checkstack(L, 10, "YAML nesting");
  long first = ld->nodes;
  ld->nodes++;
  const char *anchor = NULL;
  char anchor_buf[256];
  int ok;
  switch (ev->type) {
  case YAML_ALIAS_EVENT:
    return parse_alias(ld);
  case YAML_SCALAR_EVENT:
    anchor = (const char *)ev->data.scalar.anchor;
    if (anchor)
      snprintf(anchor_buf, sizeof anchor_buf, "%s", anchor);
    push_scalar(ld);
    ok = 1;
    break;
  case YAML_MAPPING_START_EVENT:
    anchor = (const char *)ev->data.mapping_start.anchor;
    if (anchor)
      snprintf(anchor_buf, sizeof anchor_buf, "%s", anchor);
    ok = parse_mapping(ld, depth);
    break;
  case YAML_SEQUENCE_START_EVENT:
    anchor = (const char *)ev->data.sequence_start.anchor;
    if (anchor)
      snprintf(anchor_buf, sizeof anchor_buf, "%s", anchor);
    ok = parse_sequence(ld, depth);
    break;
  default:
    fail_at(ld, ev->start_mark, "unexpected YAML event");
    return 0;
  }
  if (ok && anchor)
    set_anchor(ld, anchor_buf, first);
  return ok;
}

/* Parse the whole stream; push the document's value. */
static int parse_stream(loader *ld) {
  if (!next_event(ld)) /* STREAM-START */
    return 0;
  if (!next_event(ld))
    return 0;
  if (ld->ys->event.type == YAML_STREAM_END_EVENT) {
    lua_pushlightuserdata(ld->L, NULL);
    return 1;
  }
  /* DOCUMENT-START */
  if (!next_event(ld))
    return 0;
  if (!parse_node(ld, 1))
    return 0;
  if (!next_event(ld)) /* DOCUMENT-END */
    return 0;
  if (!next_event(ld))
    return 0;
  if (ld->ys->event.type != YAML_STREAM_END_EVENT) {
    fail_at(ld, ld->ys->event.start_mark,
            "expected a single YAML document, found another");
    return 0;
  }
  return 1;
}

static int l_load(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *filename = luaL_optstring(L, 2, "<string>");
  lua_settop(L, 2);

  fl_lua_owned *box = fl_lua_push_owned(L, yaml_state_release); /* 3 */
  yaml_state *ys = calloc(1, sizeof *ys);
  if (!ys)
    return luaL_error(L, "out of memory loading YAML");
  box->ptr = ys;
  if (!yaml_parser_initialize(&ys->parser))
    return luaL_error(L, "out of memory loading YAML");
  ys->parser_ready = 1;
  yaml_parser_set_input_string(&ys->parser, (const unsigned char *)text, len);

  lua_newtable(L); /* 4: positions, weak keys */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_newtable(L); /* 5: anchors */

  loader ld = {
      .L = L, .ys = ys, .filename = filename, .positions = 4, .anchors = 5};
  int ok = parse_stream(&ld);
  fl_lua_owned_release(box);
  if (!ok)
    return fl_lua_failf(L, FL_EINVALID, "%s", ld.err);
  /* value at 6 */
  lua_pushvalue(L, 4);
  return 2;
}

int fl_lua_open_yaml(lua_State *L) {
  static const luaL_Reg funcs[] = {{"load", l_load}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
