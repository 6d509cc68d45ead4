/*
 * cron.c - cron expressions (see cron.h).
 */
#include "serve/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const MONTHS[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const WDAYS[] = {"sun", "mon", "tue", "wed",
                                    "thu", "fri", "sat"};

typedef struct range {
  const char *name;
  int lo, hi;
  const char *const *names; /* names[i] is lo + i (months from 1) */
  int nnames;
} range;

static const range FIELDS[5] = {{"minute", 0, 59, NULL, 0},
                                {"hour", 0, 23, NULL, 0},
                                {"day of month", 1, 31, NULL, 0},
                                {"month", 1, 12, MONTHS, 12},
                                {"day of week", 0, 7, WDAYS, 7}};

/* A number or a name at *p; advances *p. -1 if none. */
static int value(const char **p, const range *r) {
  const char *s = *p;
  if (isdigit((unsigned char)*s)) {
    int v = 0;
    while (isdigit((unsigned char)*s) && v < 1000)
      v = v * 10 + (*s++ - '0');
    if (isdigit((unsigned char)*s))
      return -1;
    *p = s;
    return v;
  }
  for (int i = 0; i < r->nnames; i++)
    if (strncasecmp(s, r->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
      *p = s + 3;
      return r->names == MONTHS ? i + 1 : i;
    }
  return -1;
}

/* Parse one field (len bytes at s) into bits. */
static int field(const char *s, size_t len, const range *r, uint64_t *bits,
                 int *star, char *msg, size_t msgsz) {
  char buf[128];
  if (len == 0 || len >= sizeof buf) {
    snprintf(msg, msgsz, "%s: empty or too long", r->name);
    return -1;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  *bits = 0;
  *star = strcmp(buf, "*") == 0 || strcmp(buf, "?") == 0;
  const char *p = buf;
  for (;;) {
    int lo, hi, step = 1, single = 0;
    if (*p == '*') {
      p++;
      lo = r->lo;
      hi = r->hi;
    } else {
      lo = value(&p, r);
      if (lo < 0)
        goto bad;
      hi = lo;
      single = *p != '-';
      if (*p == '-') {
        p++;
        hi = value(&p, r);
        if (hi < 0)
          goto bad;
      }
    }
    if (*p == '/') {
      p++;
      if (!isdigit((unsigned char)*p))
        goto bad;
      step = 0;
      while (isdigit((unsigned char)*p) && step < 1000)
        step = step * 10 + (*p++ - '0');
      if (step == 0 || isdigit((unsigned char)*p))
        goto bad;
      if (single)
        hi = r->hi; /* N/STEP: from N to the end */
    }
    if (lo < r->lo || hi > r->hi || lo > hi) {
      snprintf(msg, msgsz, "%s: %d-%d is outside %d-%d (or reversed)", r->name,
               lo, hi, r->lo, r->hi);
      return -1;
    }
    for (int v = lo; v >= 0 && v <= hi && v < 64; v += step)
      *bits |= 1ULL << (unsigned)v;
    if (*p == '\0')
      return 0;
    if (*p != ',')
      goto bad;
    p++;
  }
bad:
  snprintf(msg, msgsz, "%s: cannot read '%s'", r->name, buf);
  return -1;
}

int fl_cron_parse(const char *expr, fl_cron *out, char *msg, size_t msgsz) {
  static const struct {
    const char *macro, *expansion;
  } MACROS[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
                {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
                {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                {"@hourly", "0 * * * *"}};
  memset(out, 0, sizeof *out);
  if (!expr) {
    snprintf(msg, msgsz, "no expression");
    return -1;
  }
  while (isspace((unsigned char)*expr))
    expr++;
  if (*expr == '@') {
    for (size_t i = 0; i < sizeof MACROS / sizeof *MACROS; i++)
      if (strcmp(expr, MACROS[i].macro) == 0)
        return fl_cron_parse(MACROS[i].expansion, out, msg, msgsz);
    snprintf(msg, msgsz,
             "unknown macro (@yearly, @monthly, @weekly, @daily, @hourly)");
    return -1;
  }
  const char *p = expr;
  uint64_t bits[5];
  int stars[5];
  for (int f = 0; f < 5; f++) {
    while (isspace((unsigned char)*p))
      p++;
    const char *start = p;
    while (*p && !isspace((unsigned char)*p))
      p++;
    if (p == start) {
      snprintf(msg, msgsz,
               "expected five fields (minute hour day-of-month month "
               "day-of-week), got %d",
               f);
      return -1;
    }
    if (field(start, (size_t)(p - start), &FIELDS[f], &bits[f], &stars[f], msg,
              msgsz) != 0)
      return -1;
  }
  while (isspace((unsigned char)*p))
    p++;
  if (*p) {
    snprintf(msg, msgsz,
             "expected five fields (minute hour day-of-month month "
             "day-of-week), got more");
    return -1;
  }
  out->minutes = bits[0];
  out->hours = (uint32_t)bits[1];
  out->mdays = (uint32_t)bits[2];
  out->months = (uint16_t)bits[3];
  out->wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 = Sunday */
  out->mday_star = stars[2];
  out->wday_star = stars[4];
  return 0;
}

static int day_matches(const fl_cron *c, const struct tm *tm) {
  int md = (int)((c->mdays >> tm->tm_mday) & 1U);
  int wd = (int)((c->wdays >> tm->tm_wday) & 1U);
  if (c->mday_star && c->wday_star)
    return 1;
  if (c->mday_star)
    return wd;
  if (c->wday_star)
    return md;
  return md || wd;
}

time_t fl_cron_next(const fl_cron *c, time_t after) {
  time_t t = after - (after % 60) + 60;
  if (after < 0)
    return -1;
  time_t limit = after + (time_t)5 * 366 * 24 * 3600;
  while (t <= limit) {
    struct tm tm;
    gmtime_r(&t, &tm);
    if (!((c->months >> (tm.tm_mon + 1)) & 1)) {
      tm.tm_mon++;
      tm.tm_mday = 1;
      tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
      t = timegm(&tm);
      continue;
    }
    if (!day_matches(c, &tm)) {
      tm.tm_mday++;
      tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
      t = timegm(&tm);
      continue;
    }
    if (!((c->hours >> tm.tm_hour) & 1)) {
      tm.tm_hour++;
      tm.tm_min = tm.tm_sec = 0;
      t = timegm(&tm);
      continue;
    }
    if (!((c->minutes >> tm.tm_min) & 1)) {
      t += 60;
      continue;
    }
    return t;
  }
  return -1;
}
