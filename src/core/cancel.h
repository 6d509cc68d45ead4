/*
 * cancel.h - cancel tokens: scoped cancellation and retry accounting.
 *
 * A token belongs to whatever runs work that may have to stop early: each
 * engine has one, each job one chained to its engine's (the job's parent).
 * Firing a token stops the work under it and under the tokens chained to
 * it, never its parent's or a sibling's: cancelling one job leaves the other
 * jobs and the engine alone; cancelling the engine stops all its jobs.
 * Tokens are reference counted (a child holds its parent) and may be read
 * and fired from any thread.
 *
 * A token also counts the retries made under it (requests sent again, blob
 * copies tried again) and adds each to its parents, so an engine and each
 * job report their own counts with no process-wide counter.
 *
 * Each thread has a current token (NULL: none). The engine's threads set it
 * to the job they work for; an HTTP request made without a token of its own
 * uses the current one, so the endpoint interface needs no extra parameter
 * and work on a thread that set none cannot be cancelled. A polled token
 * (fl_cancel_new_polled) asks a function whether it is set instead of being
 * fired: the Lua thread's one reads the signal flag, so Ctrl-C stops a
 * request the Lua thread itself is making, and clearing the flag un-sets it.
 */
#ifndef FL_CORE_CANCEL_H
#define FL_CORE_CANCEL_H

#include <stdint.h>

#include "freightliner.h"

typedef struct fl_cancel fl_cancel;

/* A new token (one reference) chained to parent (may be NULL), which it
 * holds a reference to. NULL when out of memory. */
fl_cancel *fl_cancel_new(fl_cancel *parent);
/* A token that is set while poll(ud) returns non-zero. */
fl_cancel *fl_cancel_new_polled(int (*poll)(void *ud), void *ud);
fl_cancel *fl_cancel_ref(fl_cancel *c);
void fl_cancel_unref(fl_cancel *c); /* safe on NULL */

/* Stop the work under c (idempotent). */
void fl_cancel_fire(fl_cancel *c);
/* 1 if c or one of its parents is fired (or polls set); 0 for NULL. */
int fl_cancel_is_set(const fl_cancel *c);

void fl_cancel_count_retry(fl_cancel *c); /* c and its parents; NULL: none */
uint64_t fl_cancel_retries(const fl_cancel *c);

/* The calling thread's current token; set returns the previous one. The
 * caller keeps the token alive while it is current. */
fl_cancel *fl_cancel_current(void);
fl_cancel *fl_cancel_set_current(fl_cancel *c);

/* Sleep ms milliseconds in slices of at most 100 ms; FL_ECANCELLED (in err,
 * which may be NULL) as soon as c is set. */
fl_code fl_cancel_sleep_ms(const fl_cancel *c, long long ms, fl_error *err);

/* Exponential backoff with full jitter: a random wait in [0, cap), where
 * cap = base_ms * 2^(attempt-1), at most max_ms. attempt counts from 1. */
long long fl_backoff_ms(int attempt, double base_ms, double max_ms);

#endif
