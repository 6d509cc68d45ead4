/*
 * stdlib_embedded.h - the Lua stdlib compiled into the binary.
 *
 * tools/bin2c.c generates the table at build time from lua/stdlib/ (luac
 * bytecode, debug information kept); src/host/host.c registers each entry
 * in package.preload unless the stdlib is loaded from disk instead.
 */
#ifndef FL_LUA_STDLIB_EMBEDDED_H
#define FL_LUA_STDLIB_EMBEDDED_H

#include <stddef.h>

typedef struct fl_stdlib_module {
  const char *name;      /* "freightliner.cli" */
  const char *chunkname; /* "@lua/stdlib/freightliner/cli.lua" */
  const unsigned char *data;
  long size;
} fl_stdlib_module;

/* Terminated by an entry whose name is NULL. */
extern const fl_stdlib_module fl_stdlib_modules[];

#endif
