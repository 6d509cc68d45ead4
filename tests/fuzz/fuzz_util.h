/*
 * fuzz_util.h - what every libFuzzer target here needs: the fuzzer's input
 * as a NUL-terminated heap string (libFuzzer's buffer has no terminator, and
 * the parsers under test take C strings). Header-only, one static inline
 * function, so each target stays a single file.
 */
#ifndef FL_FUZZ_UTIL_H
#define FL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of data[0..size) plus a NUL; NULL when out of memory
 * (the target then returns 0). The caller frees it. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s) {
    memcpy(s, data, size);
    s[size] = '\0';
  }
  return s;
}

#endif
