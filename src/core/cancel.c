/*
 * cancel.c - cancel tokens (see cancel.h).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/cancel.h"

struct fl_cancel {
  atomic_int refs;
  atomic_int fired;
  atomic_ullong retries;
  fl_cancel *parent;
  int (*poll)(void *ud);
  void *ud;
};

static _Thread_local fl_cancel *current;

fl_cancel *fl_cancel_new(fl_cancel *parent) {
  fl_cancel *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  atomic_init(&c->refs, 1);
  c->parent = parent ? fl_cancel_ref(parent) : NULL;
  return c;
}

fl_cancel *fl_cancel_new_polled(int (*poll)(void *ud), void *ud) {
  fl_cancel *c = fl_cancel_new(NULL);
  if (c) {
    c->poll = poll;
    c->ud = ud;
  }
  return c;
}

fl_cancel *fl_cancel_ref(fl_cancel *c) {
  if (c)
    atomic_fetch_add(&c->refs, 1);
  return c;
}

void fl_cancel_unref(fl_cancel *c) {
  while (c && atomic_fetch_sub(&c->refs, 1) == 1) {
    fl_cancel *parent = c->parent;
    free(c);
    c = parent;
  }
}

void fl_cancel_fire(fl_cancel *c) {
  if (c)
    atomic_store(&c->fired, 1);
}

int fl_cancel_is_set(const fl_cancel *c) {
  for (; c; c = c->parent)
    if (atomic_load(&c->fired) || (c->poll && c->poll(c->ud)))
      return 1;
  return 0;
}

void fl_cancel_count_retry(fl_cancel *c) {
  for (; c; c = c->parent)
    atomic_fetch_add(&c->retries, 1);
}

uint64_t fl_cancel_retries(const fl_cancel *c) {
  return c ? atomic_load(&((fl_cancel *)c)->retries) : 0;
}

fl_cancel *fl_cancel_current(void) { return current; }

fl_cancel *fl_cancel_set_current(fl_cancel *c) {
  fl_cancel *prev = current;
  current = c;
  return prev;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

fl_code fl_cancel_sleep_ms(const fl_cancel *c, long long ms, fl_error *err) {
  long long end = now_ms() + ms;
  for (;;) {
    if (fl_cancel_is_set(c))
      return err ? fl_error_set(err, FL_ECANCELLED, "cancelled")
                 : FL_ECANCELLED;
    long long left = end - now_ms();
    if (left <= 0)
      return FL_OK;
    if (left > 100)
      left = 100;
    struct timespec ts = {(time_t)(left / 1000),
                          (long)(left % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* splitmix64 on a per-thread state seeded from the clock and the address of
 * that state: no shared mutable state. */
static uint64_t next_random(void) {
  static _Thread_local uint64_t state;
  if (!state) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&state ^
            (uint64_t)ts.tv_sec;
  }
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

long long fl_backoff_ms(int attempt, double base_ms, double max_ms) {
  if (attempt < 1)
    attempt = 1;
  double cap = base_ms * (double)(1LL << (attempt - 1 < 20 ? attempt - 1 : 20));
  if (cap > max_ms)
    cap = max_ms;
  return (long long)((double)(next_random() % 1000000) / 1e6 * cap);
}
