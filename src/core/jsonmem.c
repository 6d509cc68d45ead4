/*
 * jsonmem.c - jansson with failed allocations noticed (see jsonmem.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/jsonmem.h"

static _Thread_local int alloc_failed;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void *noting_malloc(size_t n) {
  void *p = malloc(n);
  if (!p)
    alloc_failed = 1;
  return p;
}

static void install(void) { json_set_alloc_funcs(noting_malloc, free); }

void fl_json_init(void) { pthread_once(&init_once, install); }

json_t *fl_json_loadb(const char *buf, size_t len, json_error_t *jerr,
                      int *oom) {
  fl_json_init();
  alloc_failed = 0;
  json_t *root = json_loadb(buf, len, 0, jerr);
  *oom = !root && alloc_failed;
  return root;
}
