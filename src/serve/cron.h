/*
 * cron.h - five-field cron expressions (minute hour day-of-month month
 * day-of-week), evaluated in UTC.
 *
 * Each field is '*' or a comma list of N, N-M, with an optional /STEP
 * ('*' /STEP too); months and weekdays also by English three-letter name
 * (jan..dec, sun..sat), weekday 7 is Sunday like 0. As in Vixie cron, when
 * both day fields are restricted a day matching either one matches. The
 * macros @yearly (@annually), @monthly, @weekly, @daily (@midnight) and
 * @hourly stand for their usual expressions. Pure functions: no state, no
 * allocation.
 */
#ifndef FL_SERVE_CRON_H
#define FL_SERVE_CRON_H

#include <stdint.h>
#include <time.h>

typedef struct fl_cron {
  uint64_t minutes; /* bit m: minute m matches (0..59) */
  uint32_t hours;   /* bits 0..23 */
  uint32_t mdays;   /* bits 1..31 */
  uint16_t months;  /* bits 1..12 */
  uint8_t wdays;    /* bits 0..6, Sunday = 0 */
  int mday_star, wday_star;
} fl_cron;

/* Parse expr into *out. 0, or -1 with a message for the user in msg. */
int fl_cron_parse(const char *expr, fl_cron *out, char *msg, size_t msgsz);

/* The first matching minute strictly after `after` (Unix time), or -1 when
 * none comes within five years (e.g. "0 0 30 2 *"). */
time_t fl_cron_next(const fl_cron *c, time_t after);

#endif
