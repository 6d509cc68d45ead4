/*
 * log.c - the process-wide logger (see log.h).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static atomic_int log_level = FL_LOG_INFO;
static atomic_int log_json = 0;
static char run_id[64] = "";

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

int fl_log_level_from_name(const char *name) {
  for (int i = 0; i <= FL_LOG_OFF; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  if (strcmp(name, "warning") == 0)
    return FL_LOG_WARN;
  return -1;
}

const char *fl_log_level_name(fl_log_level level) { return level_names[level]; }

void fl_log_set_level(fl_log_level level) { atomic_store(&log_level, level); }
fl_log_level fl_log_get_level(void) {
  return (fl_log_level)atomic_load(&log_level);
}
void fl_log_set_json(int json) { atomic_store(&log_json, json); }

/* Set once at start-up, before worker threads exist. */
void fl_log_set_run_id(const char *id) {
  snprintf(run_id, sizeof run_id, "%s", id ? id : "");
}

int fl_log_enabled(fl_log_level level) {
  return (int)level >= atomic_load(&log_level) && level < FL_LOG_OFF;
}

/* Append s to buf as JSON string content. */
static size_t json_escape(char *buf, size_t n, size_t at, const char *s) {
  for (; *s && at + 7 < n; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[at++] = '\\';
      buf[at++] = (char)c;
    } else if (c < 0x20) {
      at += (size_t)snprintf(buf + at, n - at, "\\u%04x", c);
    } else {
      buf[at++] = (char)c;
    }
  }
  return at;
}

/* The letter of a named escape (\\ \n \r \t \e), or 0. */
static char escape_letter(unsigned char c) {
  switch (c) {
  case '\\':
    return '\\';
  case '\n':
    return 'n';
  case '\r':
    return 'r';
  case '\t':
    return 't';
  case 0x1b:
    return 'e';
  default:
    return 0;
  }
}

/* Append s to buf for a text line: control characters (C0, DEL, the C1
 * range), backslashes and bytes that are not UTF-8 as \\, \n, \r, \t, \e or
 * \xNN (as freightliner.printable does in Lua), so a
 * name from a remote registry cannot drive the terminal or forge a line. */
static size_t text_escape(char *buf, size_t n, size_t at, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  while (*s && at + 9 < n) {
    unsigned char c = *s;
    size_t len = c < 0x80                ? 1
                 : c >= 0xc2 && c < 0xe0 ? 2
                 : c >= 0xe0 && c < 0xf0 ? 3
                 : c >= 0xf0 && c < 0xf5 ? 4
                                         : 0;
    for (size_t k = 1; k < len; k++)
      if ((s[k] & 0xc0) != 0x80)
        len = 0;
    int control = c < 0x20 || c == 0x7f || c == '\\' ||
                  (c == 0xc2 && len == 2 && s[1] < 0xa0);
    if (len == 0 || control) {
      size_t count = len == 0 ? 1 : len;
      for (size_t k = 0; k < count && at + 5 < n; k++) {
        char letter = escape_letter(s[k]);
        if (letter) {
          buf[at++] = '\\';
          buf[at++] = letter;
        } else {
          at += (size_t)snprintf(buf + at, n - at, "\\x%02x", s[k]);
        }
      }
      s += count;
    } else {
      memcpy(buf + at, s, len);
      at += len;
      s += len;
    }
  }
  return at;
}

static void vlog(fl_log_level level, const char *image, const char *fields,
                 const char *fmt, va_list ap) {
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);

  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char when[40];
  size_t wl = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + wl, sizeof when - wl, ".%03ldZ", (long)tv.tv_usec / 1000);

  char line[8192];
  size_t at;
  if (atomic_load(&log_json)) {
    at = (size_t)snprintf(line, sizeof line,
                          "{\"time\":\"%s\",\"level\":\"%s\",\"run_id\":\"",
                          when, level_names[level]);
    at = json_escape(line, sizeof line, at, run_id);
    if (image) {
      at += (size_t)snprintf(line + at, sizeof line - at, "\",\"image\":\"");
      at = json_escape(line, sizeof line, at, image);
    }
    at += (size_t)snprintf(line + at, sizeof line - at, "\",\"message\":\"");
    at = json_escape(line, sizeof line, at, msg);
    size_t flen = fields ? strlen(fields) : 0;
    if (flen > 0 && at + flen + 8 < sizeof line) {
      memcpy(line + at, "\",", 2);
      memcpy(line + at + 2, fields, flen);
      at += 2 + flen;
      memcpy(line + at, "}\n", 2);
      at += 2;
    } else {
      if (at + 3 > sizeof line)
        at = sizeof line - 3;
      memcpy(line + at, "\"}\n", 3);
      at += 3;
    }
  } else {
    int n = snprintf(line, sizeof line, "%s %-5s ", when, level_names[level]);
    at = n < 0 ? 0 : (size_t)n;
    if (image) {
      at = text_escape(line, sizeof line, at, image);
      if (at + 2 < sizeof line) {
        memcpy(line + at, ": ", 2);
        at += 2;
      }
    }
    at = text_escape(line, sizeof line, at, msg);
    line[at < sizeof line ? at : sizeof line - 1] = '\n';
    at = at < sizeof line ? at + 1 : sizeof line;
  }
  ssize_t ignored = write(STDERR_FILENO, line, at);
  (void)ignored;
}

void fl_log(fl_log_level level, const char *image, const char *fmt, ...) {
  if (!fl_log_enabled(level))
    return;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, image, NULL, fmt, ap);
  va_end(ap);
}

void fl_log_fields(fl_log_level level, const char *image, const char *fields,
                   const char *fmt, ...) {
  if (!fl_log_enabled(level))
    return;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, image, fields, fmt, ap);
  va_end(ap);
}
