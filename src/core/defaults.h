/*
 * defaults.h - every tunable default of Freightliner, in one place.
 *
 * C code uses these names; Lua reads the same values as core.defaults (the
 * CLI help, fl.copy's engine settings and the config schema take them from
 * there), and README.md has the one table that documents them. Change a
 * default here and nowhere else.
 */
#ifndef FL_CORE_DEFAULTS_H
#define FL_CORE_DEFAULTS_H

/* The engine (fl_engine_config, core.engine.new, fl.configure). */
#define FL_DEFAULT_BLOB_WORKERS 8   /* concurrent blob transfers */
#define FL_DEFAULT_IMAGE_WORKERS 32 /* image jobs at once; >= workers */
#define FL_DEFAULT_BLOB_ATTEMPTS 5  /* whole-blob copies per blob */
#define FL_DEFAULT_PIPE_CAPACITY (512 * 1024) /* bytes buffered per blob copy */

/* One registry's HTTP client (fl_http_config, fl.registry options). */
#define FL_DEFAULT_MAX_ATTEMPTS 5        /* tries per request */
#define FL_DEFAULT_RETRY_BASE_MS 200     /* first backoff cap */
#define FL_DEFAULT_RETRY_MAX_MS 30000    /* backoff cap (full jitter below) */
#define FL_DEFAULT_RETRY_AFTER_MAX_S 60  /* longer Retry-After: RATE_LIMITED */
#define FL_DEFAULT_REQUEST_TIMEOUT_S 300 /* one request, all tries and waits */
#define FL_DEFAULT_ATTEMPT_TIMEOUT_S 120 /* one try of a non-streamed request */
#define FL_DEFAULT_CONNECT_TIMEOUT_MS 15000
#define FL_DEFAULT_LOW_SPEED_TIME_S 60 /* abort below 1 KiB/s for this long */
#define FL_DEFAULT_BREAKER_THRESHOLD 5 /* consecutive failures: marked down */
#define FL_DEFAULT_BREAKER_COOLDOWN_S 30

#endif
