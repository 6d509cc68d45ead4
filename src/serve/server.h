/*
 * server.h - `freightliner serve`'s HTTP listener (libmicrohttpd).
 *
 * Threads: libmicrohttpd's (a small pool answering requests) and one reaper
 * that cuts connections whose request headers are not complete within the
 * connection timeout (slow-header attacks); neither ever touches Lua. They
 * read the job table (jobs.h), the sync list, the ready flag and the
 * metrics, all guarded by mutexes and written by the Lua thread, and hand
 * job creation, cancellation and reloads to the Lua thread through the
 * job table's bounded queue. Everything under /api/ needs an API key
 * (auth.h); /healthz, /readyz and /metrics need none and move to their own
 * listener with metrics_listen.
 *
 * Every response carries the security headers (nosniff, frame DENY, CSP
 * default-src 'none', no-store, HSTS under TLS) and an X-Request-Id; error
 * bodies are {"error": MESSAGE, "request_id": ID} and never contain paths
 * or internal detail. The audit log gets one JSON line per authentication
 * failure, lockout, job creation, cancellation and reload.
 */
#ifndef FL_SERVE_SERVER_H
#define FL_SERVE_SERVER_H

#include <jansson.h>
#include <stddef.h>

#include "freightliner.h"
#include "serve/auth.h"
#include "serve/jobs.h"
#include "serve/metrics.h"
#include "serve/notify.h"
#include "serve/probe.h"

typedef struct fl_server fl_server;

typedef struct fl_server_options {
  const char *listen;         /* HOST:PORT (PORT 0: any free port) */
  const char *metrics_listen; /* NULL: /metrics etc. on listen */
  const char *tls_cert;       /* PEM text, or NULL for plain HTTP */
  const char *tls_key;
  unsigned max_connections;        /* per listener */
  unsigned timeout_s;              /* idle and header deadline per connection */
  size_t max_body;                 /* bytes */
  size_t max_queued;               /* jobs waiting to run */
  size_t max_kept;                 /* finished jobs listed */
  const char *const *cors_origins; /* allowed Origin values */
  size_t ncors;
  const char *audit_path; /* NULL: no audit log */
  const char *version;
  unsigned probe_interval_s; /* registry reachability for /readyz; 0: off */
} fl_server_options;

fl_server *fl_server_start(const fl_server_options *o, fl_error *err);
/* Stop listening and join the threads. Safe on NULL. */
void fl_server_free(fl_server *s);

/* The port a listener is bound to (0: main, 1: metrics). */
int fl_server_port(fl_server *s, int which);

fl_jobs *fl_server_jobs(fl_server *s);
fl_metrics *fl_server_metrics(fl_server *s);
fl_auth *fl_server_auth(fl_server *s);
fl_notify *fl_server_notify(fl_server *s);
fl_probe *fl_server_probe(fl_server *s);

void fl_server_set_ready(fl_server *s, int ready, const char *reason);
/* The sync entries (a JSON array of objects with "name"); copied. */
int fl_server_set_syncs(fl_server *s, json_t *syncs);
/* One audit line: {"time", "event", ...fields}. fields may be NULL. */
void fl_server_audit(fl_server *s, const char *event, json_t *fields);

#endif
