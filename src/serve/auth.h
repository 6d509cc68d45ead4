/*
 * auth.h - API keys and the failed-authentication lockout.
 *
 * A key set holds only the SHA-256 of each key; fl_auth_check hashes the
 * presented key and compares it with every stored hash in constant time
 * (CRYPTO_memcmp, no early exit), so neither the key nor its position
 * leaks through timing. Replacing the set (SIGHUP, rotation) is atomic for
 * readers: a check sees the old set or the new one.
 *
 * The lockout table counts failed attempts per client address: the first
 * FL_AUTH_FREE_FAILURES cost nothing, each one after that locks the
 * address out for twice as long as the one before (1 s, 2 s, 4 s, ... at
 * most FL_AUTH_MAX_LOCK_S); a success forgets the address, and so does a
 * quiet FL_AUTH_FORGET_S. The table has a fixed size: when it is full the
 * stalest entry is reused. All functions are safe from any thread.
 */
#ifndef FL_SERVE_AUTH_H
#define FL_SERVE_AUTH_H

#include <stddef.h>

#define FL_AUTH_FREE_FAILURES 5
#define FL_AUTH_MAX_LOCK_S 900
#define FL_AUTH_FORGET_S 900
#define FL_AUTH_SLOTS 1024

typedef struct fl_auth fl_auth;

fl_auth *fl_auth_new(void);
void fl_auth_free(fl_auth *a);

/* Replace the key set (keys[i] of lens[i] bytes). 0, or -1 out of memory. */
int fl_auth_set_keys(fl_auth *a, const char *const *keys, const size_t *lens,
                     size_t n);
size_t fl_auth_key_count(fl_auth *a);

/* 1 if key matches one of the set (constant time over the set). */
int fl_auth_check(fl_auth *a, const char *key, size_t len);

/* Seconds (rounded up) client (an address string) stays locked out at
 * now_ms (a monotonic clock in milliseconds); 0 if it may try. */
long fl_auth_locked(fl_auth *a, const char *client, long long now_ms);
/* Record a failure; returns the lockout it starts, in seconds (0: none). */
long fl_auth_failed(fl_auth *a, const char *client, long long now_ms);
void fl_auth_succeeded(fl_auth *a, const char *client);

#endif
