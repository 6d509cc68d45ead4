/*
 * probe.h - registry reachability for /readyz.
 *
 * A thread of its own opens a TCP connection to each target (HOST:PORT, or
 * HOST for 443) every interval, 2 s at most each, and remembers the first
 * that failed; the HTTP threads read that verdict. A new target list starts
 * a round at once. Nothing here talks HTTP or touches Lua; DNS lookups use
 * getaddrinfo, so a stuck resolver delays only this thread (and stopping it).
 */
#ifndef FL_SERVE_PROBE_H
#define FL_SERVE_PROBE_H

#include <stddef.h>

typedef struct fl_probe fl_probe;

/* interval_s 0: no thread, every target counts as reachable. */
fl_probe *fl_probe_new(unsigned interval_s);
void fl_probe_free(fl_probe *p);

/* Replace the targets (copied). 0, or -1 out of memory. */
int fl_probe_set_targets(fl_probe *p, const char *const *targets, size_t n);

/* 1 if every target answered in the last round (or none has run yet);
 * else 0 and the first target that did not, in out. */
int fl_probe_ok(fl_probe *p, char *out, size_t n);

#endif
