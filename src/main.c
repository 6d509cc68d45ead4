/*
 * main.c - the freightliner binary: boots Lua and hands over to the stdlib.
 *
 * All command-line handling lives in lua/stdlib/freightliner/cli.lua. The
 * only option read here is --lua-dir DIR (before the command), because it
 * decides where the stdlib itself is loaded from.
 *
 * The process may run for weeks with dozens of engine threads: glibc's
 * default of up to 8 malloc arenas per core lets freed memory scatter over
 * many arenas, so resident memory creeps up run after run. A few arenas
 * keep it flat (the soak test measures it); MALLOC_ARENA_MAX overrides.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freightliner.h"

int main(int argc, char **argv) {
  if (!getenv("MALLOC_ARENA_MAX"))
    mallopt(M_ARENA_MAX, 2);
  fl_host_options opts = {0};
  int first = 1;
  while (first < argc) {
    if (strcmp(argv[first], "--lua-dir") == 0 && first + 1 < argc) {
      opts.lua_dir = argv[first + 1];
      first += 2;
    } else if (strncmp(argv[first], "--lua-dir=", 10) == 0) {
      opts.lua_dir = argv[first] + 10;
      first += 1;
    } else {
      break;
    }
  }
  fl_host *host = fl_host_new(&opts);
  if (!host) {
    fputs("freightliner: out of memory starting Lua\n", stderr);
    return 1;
  }
  /* arg[0] is the program; arg[1..] what follows the host options. */
  argv[first - 1] = argv[0];
  int status = fl_host_main(host, argc - first + 1, argv + first - 1);
  fl_host_free(host);
  return status;
}
