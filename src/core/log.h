/*
 * log.h - the process-wide logger, shared by C and Lua.
 *
 * One line per event on stderr, human text by default or one JSON object
 * per line (`--log-format json`), each with time, level, message, the run id
 * that correlates every line of one run, and optional fields (image,
 * registry). Safe to call from any thread: a line is written with a single
 * write(2) so lines from worker threads never interleave. Secrets must never
 * be passed in (callers redact Authorization headers first).
 */
#ifndef FL_CORE_LOG_H
#define FL_CORE_LOG_H

typedef enum fl_log_level {
  FL_LOG_DEBUG = 0,
  FL_LOG_INFO,
  FL_LOG_WARN,
  FL_LOG_ERROR,
  FL_LOG_OFF
} fl_log_level;

/* Parse "debug|info|warn|error|off"; -1 if unknown. */
int fl_log_level_from_name(const char *name);
const char *fl_log_level_name(fl_log_level level);

void fl_log_set_level(fl_log_level level);
fl_log_level fl_log_get_level(void);
void fl_log_set_json(int json);
void fl_log_set_run_id(const char *run_id);
int fl_log_enabled(fl_log_level level);

/* Log a message; `image` may be NULL. */
void fl_log(fl_log_level level, const char *image, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As fl_log, with `fields`: more members of the JSON line, already encoded
 * as JSON object members without braces ("\"n\":1,\"k\":\"v\""), or NULL.
 * Text lines carry only the message. */
void fl_log_fields(fl_log_level level, const char *image, const char *fields,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define FL_DEBUG(...) fl_log(FL_LOG_DEBUG, NULL, __VA_ARGS__)
#define FL_INFO(...) fl_log(FL_LOG_INFO, NULL, __VA_ARGS__)
#define FL_WARN(...) fl_log(FL_LOG_WARN, NULL, __VA_ARGS__)

#endif
