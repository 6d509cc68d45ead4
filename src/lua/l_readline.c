/*
 * l_readline.c - the Lua `readline` module: core.readline, GNU readline
 * line editing, history and tab completion for the REPL.
 *
 *   readline.readline(prompt)     -> line | nil at end of input
 *   readline.add_history(line)
 *   readline.read_history(path)   -> true | nil, msg, "IO" (a missing file
 *                                    is not an error)
 *   readline.write_history(path [, max_lines]) -> true | nil, msg, "IO"
 *   readline.set_completer(fn | nil)
 *       fn(word, line, start) -> list of candidate strings; `word` is the
 *       text before the cursor back to a word break, `start` its 1-based
 *       offset in `line`.
 *
 * Completion runs inside readline(), on the Lua thread that called it: the
 * completer is kept in the registry and called only through fl_lua_pcall,
 * from a C function that copies its answer into malloc'd strings, so a Lua
 * error (or out of memory) in the completer never unwinds through readline
 * and never leaks. Without a terminal, readline still reads lines from a
 * pipe.
 *
 * Ctrl-C at the prompt clears the line and shows a fresh prompt, as in a
 * shell: while readline() runs, SIGINT only sets a flag (readline's own
 * signal handling is off) and readline's signal hook, run on this thread
 * when its read is interrupted, does the clearing. Whatever handled SIGINT
 * before (the REPL's statement interrupt) is restored afterwards.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lua/bindings.h"
#include "lua/lua_util.h"

#define COMPLETER_KEY "freightliner.readline.completer"

/* Set while readline() runs: the state the completion callback may use. */
static lua_State *active_L = NULL;

typedef struct candidates {
  char **items;
  size_t n, cap, next;
} candidates;

static void candidates_free(candidates *c) {
  for (size_t i = c->next; i < c->n; i++)
    free(c->items[i]);
  free(c->items);
  memset(c, 0, sizeof *c);
}

/* The candidates being handed to readline by generator(). */
static candidates pending;

static int candidates_add(candidates *c, const char *s) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    char **items = realloc(c->items, cap * sizeof *items);
    if (!items)
      return -1;
    c->items = items;
    c->cap = cap;
  }
  char *copy = strdup(s);
  if (!copy)
    return -1;
  c->items[c->n++] = copy;
  return 0;
}

/* One completion request, passed to collect() as a light userdata. */
typedef struct request {
  candidates c;
  const char *word;
  const char *line;
  int start;
} request;

/* Protected (called through fl_lua_pcall): call the completer and copy its
 * list into req->c. Everything that may allocate or raise happens here. */
static int collect(lua_State *L) {
  request *req = lua_touserdata(L, 1);
  lua_settop(L, 0);
  if (lua_getfield(L, LUA_REGISTRYINDEX, COMPLETER_KEY) != LUA_TFUNCTION)
    return 0;
  lua_pushstring(L, req->word);
  lua_pushstring(L, req->line);
  lua_pushinteger(L, req->start);
  lua_call(L, 3, 1);
  if (!lua_istable(L, -1))
    return 0;
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i);
    const char *s = lua_tostring(L, -1);
    if (s && candidates_add(&req->c, s) != 0)
      return luaL_error(L, "out of memory completing");
    lua_pop(L, 1);
  }
  return 0;
}

static char *generator(const char *text, int state) {
  (void)text;
  (void)state;
  if (pending.next < pending.n)
    return pending.items[pending.next++]; /* readline frees it */
  candidates_free(&pending);
  return NULL;
}

/* readline's completion hook. It runs inside readline(), so it must not
 * raise: it only pushes values that do not allocate (a light C function, a
 * light userdata) after reserving stack space, and calls into Lua through
 * fl_lua_pcall. */
static char **complete(const char *text, int start, int end) {
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  rl_completion_append_character = '\0';
  lua_State *L = active_L;
  candidates_free(&pending);
  if (!L || !lua_checkstack(L, 4))
    return NULL;
  request req = {.word = text, .line = rl_line_buffer, .start = start + 1};
  lua_pushcfunction(L, collect);
  lua_pushlightuserdata(L, &req);
  if (fl_lua_pcall(L, 1, 0) != LUA_OK) {
    lua_pop(L, 1); /* a broken completer just completes nothing */
    candidates_free(&req.c);
    return NULL;
  }
  if (req.c.n == 0) {
    candidates_free(&req.c);
    return NULL;
  }
  pending = req.c;
  return rl_completion_matches(text, generator);
}

static void release_line(void *p) { free(p); }

static volatile sig_atomic_t prompt_interrupted;

static void on_prompt_sigint(int sig) {
  (void)sig;
  prompt_interrupted = 1;
}

/* Runs on this thread when readline's read is interrupted by a signal. */
static int prompt_signal_hook(void) {
  if (prompt_interrupted) {
    prompt_interrupted = 0;
    rl_replace_line("", 0);
    rl_point = rl_end = 0;
    fputs("^C", rl_outstream ? rl_outstream : stdout);
    rl_crlf();
    rl_on_new_line();
    rl_redisplay();
  }
  return 0;
}

/* The completion settings are installed only while our readline() runs, so
 * that loading the module into a program that uses readline itself (the
 * stock lua5.4 prompt) changes nothing there. */
static int l_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "");
  fl_lua_owned *box = fl_lua_push_owned(L, release_line);
  lua_State *saved_L = active_L;
  rl_completion_func_t *saved_fn = rl_attempted_completion_function;
  const char *saved_breaks = rl_basic_word_break_characters;
  const char *saved_name = rl_readline_name;
  active_L = L;
  rl_readline_name = "freightliner";
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{}()[],+-*/%^~#";
  int saved_catch = rl_catch_signals;
  rl_hook_func_t *saved_hook = rl_signal_event_hook;
  struct sigaction sa, old_sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prompt_sigint; /* no SA_RESTART: the read returns */
  sigemptyset(&sa.sa_mask);
  rl_catch_signals = 0;
  rl_signal_event_hook = prompt_signal_hook;
  prompt_interrupted = 0;
  sigaction(SIGINT, &sa, &old_sa);
  box->ptr = readline(prompt);
  sigaction(SIGINT, &old_sa, NULL);
  rl_catch_signals = saved_catch;
  rl_signal_event_hook = saved_hook;
  rl_attempted_completion_function = saved_fn;
  rl_basic_word_break_characters = saved_breaks;
  rl_readline_name = saved_name;
  active_L = saved_L;
  candidates_free(&pending);
  if (!box->ptr)
    return 0;
  lua_pushstring(L, box->ptr);
  fl_lua_owned_release(box);
  return 1;
}

static int l_add_history(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
  if (*line)
    add_history(line);
  return 0;
}

static int l_read_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int rc = read_history(path);
  if (rc != 0 && rc != ENOENT)
    return fl_lua_failf(L, FL_EIO, "reading history %s: %s", path,
                        strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_write_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 1000);
  int rc = write_history(path);
  if (rc == 0 && max > 0)
    rc = history_truncate_file(path, (int)max);
  if (rc != 0)
    return fl_lua_failf(L, FL_EIO, "writing history %s: %s", path,
                        strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_set_completer(lua_State *L) {
  if (!lua_isnoneornil(L, 1))
    luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, COMPLETER_KEY);
  return 0;
}

int fl_lua_open_readline(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"readline", l_readline},           {"add_history", l_add_history},
      {"read_history", l_read_history},   {"write_history", l_write_history},
      {"set_completer", l_set_completer}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
