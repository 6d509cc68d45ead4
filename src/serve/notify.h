/*
 * notify.h - webhook deliveries: one JSON POST per finished run, signed,
 * retried with backoff, on a thread of its own.
 *
 * The Lua thread decides what to send (fl_notify_post copies the URL, the
 * body and the secret into a bounded queue and returns at once); the
 * notifier's thread sends each with libcurl (http and https only, no
 * redirects, 10 s per attempt), with the header
 * X-Freightliner-Signature: sha256=HEX, the HMAC-SHA256 of the body under
 * the secret, and tries again up to FL_NOTIFY_ATTEMPTS times with
 * exponential backoff when the receiver fails or answers other than 2xx.
 * Deliveries are counted in freightliner_webhook_deliveries_total{outcome}.
 * Stopping cancels the wait between attempts; what is still queued then is
 * dropped (and counted).
 */
#ifndef FL_SERVE_NOTIFY_H
#define FL_SERVE_NOTIFY_H

#include <stddef.h>

#include "serve/metrics.h"

#define FL_NOTIFY_ATTEMPTS 5

typedef struct fl_notify fl_notify;

/* metrics may be NULL. NULL when out of memory or no thread. */
fl_notify *fl_notify_new(size_t max_pending, fl_metrics *metrics);
/* Stop the thread (an attempt in flight ends within its timeout). */
void fl_notify_free(fl_notify *n);

/* Queue one delivery. 0, or -1 when the queue is full or out of memory. */
int fl_notify_post(fl_notify *n, const char *url, const char *body,
                   const char *secret);

/* The signature header's value for body under secret: "sha256=" + 64 hex
 * digits, into out (>= 72 bytes). */
void fl_notify_sign(const char *secret, const char *body, size_t len,
                    char *out);

#endif
