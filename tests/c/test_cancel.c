/*
 * test_cancel.c - cancel tokens (core/cancel.h): scoping, reference counts,
 * retry accounting, the thread's current token, cancellable sleeps and the
 * backoff's bounds.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "core/cancel.h"

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A job's token sees its engine's cancellation; the engine and the other
 * jobs never see a job's. */
static void test_scoping(void **state) {
  (void)state;
  fl_cancel *engine = fl_cancel_new(NULL);
  fl_cancel *a = fl_cancel_new(engine), *b = fl_cancel_new(engine);
  fl_cancel_fire(a);
  assert_true(fl_cancel_is_set(a));
  assert_false(fl_cancel_is_set(b));
  assert_false(fl_cancel_is_set(engine));
  fl_cancel *later = fl_cancel_new(engine);
  assert_false(fl_cancel_is_set(later));
  fl_cancel_fire(engine);
  assert_true(fl_cancel_is_set(b));
  assert_true(fl_cancel_is_set(later));
  assert_false(fl_cancel_is_set(NULL));
  /* children hold their parent: dropping the engine's own reference first
   * is fine (ASan sees a use after free otherwise) */
  fl_cancel_unref(engine);
  assert_true(fl_cancel_is_set(a));
  fl_cancel_unref(a);
  fl_cancel_unref(b);
  fl_cancel_unref(later);
  fl_cancel_unref(NULL);
}

static void test_retries_counted_up_the_chain(void **state) {
  (void)state;
  fl_cancel *engine = fl_cancel_new(NULL);
  fl_cancel *a = fl_cancel_new(engine), *b = fl_cancel_new(engine);
  fl_cancel_count_retry(a);
  fl_cancel_count_retry(a);
  fl_cancel_count_retry(b);
  fl_cancel_count_retry(NULL);
  assert_int_equal(fl_cancel_retries(a), 2);
  assert_int_equal(fl_cancel_retries(b), 1);
  assert_int_equal(fl_cancel_retries(engine), 3);
  fl_cancel_unref(a);
  fl_cancel_unref(b);
  fl_cancel_unref(engine);
}

static int flag;
static int poll_flag(void *ud) { return *(int *)ud; }

static void test_polled_token(void **state) {
  (void)state;
  fl_cancel *c = fl_cancel_new_polled(poll_flag, &flag);
  flag = 0;
  assert_false(fl_cancel_is_set(c));
  flag = 1;
  assert_true(fl_cancel_is_set(c));
  flag = 0; /* cleared: set no longer (the REPL's next statement) */
  assert_false(fl_cancel_is_set(c));
  fl_cancel_unref(c);
}

static void *other_thread(void *arg) {
  (void)arg;
  return fl_cancel_current(); /* NULL: current tokens are per thread */
}

static void test_current_is_per_thread(void **state) {
  (void)state;
  fl_cancel *c = fl_cancel_new(NULL);
  assert_null(fl_cancel_set_current(c));
  assert_ptr_equal(fl_cancel_current(), c);
  pthread_t t;
  void *seen = (void *)1;
  assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
  pthread_join(t, &seen);
  assert_null(seen);
  assert_ptr_equal(fl_cancel_set_current(NULL), c);
  fl_cancel_unref(c);
}

typedef struct firer {
  fl_cancel *c;
  int after_ms;
} firer;

static void *fire_later(void *arg) {
  firer *f = arg;
  struct timespec ts = {0, (long)f->after_ms * 1000000L};
  nanosleep(&ts, NULL);
  fl_cancel_fire(f->c);
  return NULL;
}

/* A 10 s sleep ends within about 100 ms of the token being fired. */
static void test_sleep_is_cancellable(void **state) {
  (void)state;
  fl_cancel *c = fl_cancel_new(NULL);
  assert_int_equal(fl_cancel_sleep_ms(c, 30, NULL), FL_OK);
  firer f = {c, 200};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, fire_later, &f), 0);
  long long t0 = now_ms();
  fl_error err;
  assert_int_equal(fl_cancel_sleep_ms(c, 10000, &err), FL_ECANCELLED);
  long long took = now_ms() - t0;
  pthread_join(t, NULL);
  assert_true(took >= 150 && took < 1000);
  fl_cancel_unref(c);
}

/* Full jitter under an exponential cap: never negative, never above the
 * cap, the cap never above max_ms, for every attempt (the old engine
 * backoff overflowed tv_nsec from the 4th attempt on). */
static void test_backoff_bounds(void **state) {
  (void)state;
  for (int attempt = 1; attempt <= 70; attempt++) {
    double cap = 200.0 * (double)(1LL << (attempt - 1 < 20 ? attempt - 1 : 20));
    if (cap > 30000)
      cap = 30000;
    long long most = 0;
    for (int i = 0; i < 200; i++) {
      long long w = fl_backoff_ms(attempt, 200, 30000);
      assert_true(w >= 0 && w <= (long long)cap);
      most = w > most ? w : most;
    }
    assert_true(most >= (long long)(cap / 4)); /* jitter spans the range */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scoping),
      cmocka_unit_test(test_retries_counted_up_the_chain),
      cmocka_unit_test(test_polled_token),
      cmocka_unit_test(test_current_is_per_thread),
      cmocka_unit_test(test_sleep_is_cancellable),
      cmocka_unit_test(test_backoff_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
