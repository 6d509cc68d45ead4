/*
 * test_serve_cron.c - the cron parser (src/serve/cron.c): field syntax,
 * names, steps, macros, the day-of-month/day-of-week rule, next-run times
 * across month and year ends and leap days, and refusals with messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "serve/cron.h"

/* Unix time of a UTC date. */
static time_t utc(int y, int mo, int d, int h, int mi) {
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return timegm(&tm);
}

static time_t next(const char *expr, time_t after) {
  fl_cron c;
  char msg[160];
  int rc = fl_cron_parse(expr, &c, msg, sizeof msg);
  if (rc != 0)
    fail_msg("'%s' refused: %s", expr, msg);
  return fl_cron_next(&c, after);
}

static void test_fields(void **state) {
  (void)state;
  fl_cron c;
  char msg[160];
  assert_int_equal(
      fl_cron_parse("*/15 0-6/2 1,15 jan-mar,dec mon-fri", &c, msg, sizeof msg),
      0);
  assert_true(c.minutes ==
              ((1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45)));
  assert_int_equal(c.hours, (1 << 0) | (1 << 2) | (1 << 4) | (1 << 6));
  assert_int_equal(c.mdays, (1 << 1) | (1 << 15));
  assert_int_equal(c.months, (1 << 1) | (1 << 2) | (1 << 3) | (1 << 12));
  assert_int_equal(c.wdays, 0x3e);
  assert_false(c.mday_star);
  /* 7 is Sunday too; N/STEP runs from N to the end of the range */
  assert_int_equal(fl_cron_parse("5/20 * * * 7", &c, msg, sizeof msg), 0);
  assert_int_equal(c.wdays, 1);
  assert_true(c.minutes == ((1ULL << 5) | (1ULL << 25) | (1ULL << 45)));
  assert_int_equal(fl_cron_parse("  0 12 * * SUN\n", &c, msg, sizeof msg), 0);
}

static void test_refused(void **state) {
  (void)state;
  static const struct {
    const char *expr, *words;
  } bad[] = {{"* * * *", "five fields"},       {"* * * * * *", "got more"},
             {"60 * * * *", "minute"},         {"* 24 * * *", "hour"},
             {"* * 0 * *", "day of month"},    {"* * * 13 *", "month"},
             {"* * * * 8", "day of week"},     {"5-1 * * * *", "reversed"},
             {"*/0 * * * *", "minute"},        {"a * * * *", "minute"},
             {"1,,2 * * * *", "minute"},       {"* * * foo *", "month"},
             {"@sometimes", "unknown macro"},  {"", "five fields"},
             {"99999999999 * * * *", "minute"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    fl_cron c;
    char msg[160] = "";
    assert_int_equal(fl_cron_parse(bad[i].expr, &c, msg, sizeof msg), -1);
    if (!strstr(msg, bad[i].words))
      fail_msg("'%s': message '%s' lacks '%s'", bad[i].expr, msg, bad[i].words);
  }
}

static void test_next(void **state) {
  (void)state;
  time_t t = utc(2026, 11, 29, 20, 7);
  assert_int_equal(next("*/15 * * * *", t), utc(2026, 11, 29, 20, 15));
  assert_int_equal(next("*/15 * * * *", utc(2026, 11, 29, 20, 15)),
                   utc(2026, 11, 29, 20, 30)); /* strictly after */
  assert_int_equal(next("0 3 * * *", t), utc(2026, 11, 30, 3, 0));
  assert_int_equal(next("@hourly", t), utc(2026, 11, 29, 21, 0));
  assert_int_equal(next("@daily", t), utc(2026, 11, 30, 0, 0));
  assert_int_equal(next("@monthly", t), utc(2026, 12, 1, 0, 0));
  assert_int_equal(next("@yearly", t), utc(2027, 1, 1, 0, 0));
  assert_int_equal(next("@weekly", t), utc(2026, 12, 6, 0, 0)); /* Sunday */
  /* 2026-11-29 is a Sunday: the next Monday noon */
  assert_int_equal(next("0 12 * * mon", t), utc(2026, 11, 30, 12, 0));
  /* across the year end, and to a leap day four years on */
  assert_int_equal(next("30 23 31 12 *", t), utc(2026, 12, 31, 23, 30));
  assert_int_equal(next("0 0 29 2 *", t), utc(2028, 2, 29, 0, 0));
  /* both day fields restricted: either matches (the 1st, or a Friday) */
  assert_int_equal(next("0 0 1 * fri", t), utc(2026, 12, 1, 0, 0));
  assert_int_equal(next("0 0 1 * fri", utc(2026, 12, 1, 0, 0)),
                   utc(2026, 12, 4, 0, 0));
  /* never: the 30th of February */
  assert_int_equal(next("0 0 30 2 *", t), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fields),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_next),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
