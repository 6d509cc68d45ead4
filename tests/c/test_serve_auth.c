/*
 * test_serve_auth.c - API key hashes and the lockout (src/serve/auth.c):
 * keys match only exactly, rotation replaces the whole set, the lockout
 * doubles per failure past the free ones, caps, is per address, is
 * forgotten on success or after a quiet spell, and survives a full table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "serve/auth.h"

static void set(fl_auth *a, const char *k1, const char *k2) {
  const char *keys[] = {k1, k2};
  size_t lens[] = {k1 ? strlen(k1) : 0, k2 ? strlen(k2) : 0};
  assert_int_equal(fl_auth_set_keys(a, keys, lens, k2 ? 2 : (k1 ? 1 : 0)), 0);
}

static void test_keys(void **state) {
  (void)state;
  fl_auth *a = fl_auth_new();
  assert_false(fl_auth_check(a, "anything", 8)); /* no keys: nothing passes */
  set(a, "first-key-0123456789", "second-key-0123456789");
  assert_int_equal(fl_auth_key_count(a), 2);
  assert_true(fl_auth_check(a, "first-key-0123456789", 20));
  assert_true(fl_auth_check(a, "second-key-0123456789", 21));
  assert_false(fl_auth_check(a, "first-key-012345678", 19));   /* prefix */
  assert_false(fl_auth_check(a, "first-key-0123456789x", 21)); /* longer */
  assert_false(fl_auth_check(a, "", 0));
  /* rotation: the old key stops working at once */
  set(a, "third-key-0123456789", NULL);
  assert_false(fl_auth_check(a, "first-key-0123456789", 20));
  assert_true(fl_auth_check(a, "third-key-0123456789", 20));
  set(a, NULL, NULL);
  assert_false(fl_auth_check(a, "third-key-0123456789", 20));
  fl_auth_free(a);
}

#define S(x) ((long long)(x)*1000) /* seconds in the table's ms */

static void test_lockout(void **state) {
  (void)state;
  fl_auth *a = fl_auth_new();
  long long now = S(1000);
  for (int i = 1; i < FL_AUTH_FREE_FAILURES; i++) {
    assert_int_equal(fl_auth_failed(a, "10.0.0.1", now), 0);
    assert_int_equal(fl_auth_locked(a, "10.0.0.1", now), 0);
  }
  assert_int_equal(fl_auth_failed(a, "10.0.0.1", now), 1);
  assert_int_equal(fl_auth_locked(a, "10.0.0.1", now), 1);
  assert_int_equal(fl_auth_locked(a, "10.0.0.2", now), 0); /* per address */
  /* Retry-After rounds up: 1 ms left is a second */
  assert_int_equal(fl_auth_locked(a, "10.0.0.1", now + 999), 1);
  assert_int_equal(fl_auth_locked(a, "10.0.0.1", now + S(1)), 0);
  assert_int_equal(fl_auth_failed(a, "10.0.0.1", now + S(1)), 2);
  assert_int_equal(fl_auth_locked(a, "10.0.0.1", now + S(1) + 1), 2);
  assert_int_equal(fl_auth_failed(a, "10.0.0.1", now + S(3)), 4);
  for (int i = 0; i < 20; i++)
    fl_auth_failed(a, "10.0.0.1", now + S(10));
  assert_int_equal(fl_auth_locked(a, "10.0.0.1", now + S(10)),
                   FL_AUTH_MAX_LOCK_S);
  /* a success forgets everything */
  fl_auth_succeeded(a, "10.0.0.1");
  assert_int_equal(fl_auth_locked(a, "10.0.0.1", now + S(10)), 0);
  assert_int_equal(fl_auth_failed(a, "10.0.0.1", now + S(10)), 0);
  /* so does a quiet spell */
  for (int i = 0; i < FL_AUTH_FREE_FAILURES + 2; i++)
    fl_auth_failed(a, "10.0.0.3", now);
  long long later = now + S(FL_AUTH_MAX_LOCK_S + FL_AUTH_FORGET_S + 1);
  assert_int_equal(fl_auth_locked(a, "10.0.0.3", later), 0);
  assert_int_equal(fl_auth_failed(a, "10.0.0.3", later), 0);
  fl_auth_free(a);
}

static void test_full_table(void **state) {
  (void)state;
  fl_auth *a = fl_auth_new();
  char addr[32];
  /* the attacker's address locked, then a flood of other addresses */
  for (int i = 0; i < FL_AUTH_FREE_FAILURES + 3; i++)
    fl_auth_failed(a, "192.0.2.1", 100 + i);
  for (int i = 0; i < 3 * FL_AUTH_SLOTS; i++) {
    snprintf(addr, sizeof addr, "198.51.%d.%d", i / 256, i % 256);
    fl_auth_failed(a, addr, 200);
  }
  /* the table stays bounded and still works for new addresses */
  assert_int_equal(fl_auth_failed(a, "203.0.113.9", 300), 0);
  for (int i = 0; i < FL_AUTH_FREE_FAILURES; i++)
    fl_auth_failed(a, "203.0.113.9", 300);
  assert_true(fl_auth_locked(a, "203.0.113.9", 300) > 0);
  fl_auth_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_lockout),
      cmocka_unit_test(test_full_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
