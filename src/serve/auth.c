/*
 * auth.c - API key hashes and the lockout table (see auth.h).
 */
#include "serve/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_MAX 64

typedef struct slot {
  char client[CLIENT_MAX];
  int failures;
  long long last;         /* time of the last failure (ms) */
  long long locked_until; /* ms; 0: not locked */
} slot;

struct fl_auth {
  pthread_mutex_t mu;
  unsigned char (*hashes)[SHA256_DIGEST_LENGTH];
  size_t nkeys;
  slot slots[FL_AUTH_SLOTS];
};

fl_auth *fl_auth_new(void) {
  fl_auth *a = calloc(1, sizeof *a);
  if (!a)
    return NULL;
  pthread_mutex_init(&a->mu, NULL);
  return a;
}

void fl_auth_free(fl_auth *a) {
  if (!a)
    return;
  OPENSSL_cleanse(a->hashes, a->nkeys * SHA256_DIGEST_LENGTH);
  free(a->hashes);
  pthread_mutex_destroy(&a->mu);
  free(a);
}

int fl_auth_set_keys(fl_auth *a, const char *const *keys, const size_t *lens,
                     size_t n) {
  unsigned char(*h)[SHA256_DIGEST_LENGTH] = NULL;
  if (n > 0) {
    h = calloc(n, sizeof *h);
    if (!h)
      return -1;
    for (size_t i = 0; i < n; i++)
      SHA256((const unsigned char *)keys[i], lens[i], h[i]);
  }
  pthread_mutex_lock(&a->mu);
  unsigned char(*old)[SHA256_DIGEST_LENGTH] = a->hashes;
  size_t oldn = a->nkeys;
  a->hashes = h;
  a->nkeys = n;
  pthread_mutex_unlock(&a->mu);
  OPENSSL_cleanse(old, oldn * SHA256_DIGEST_LENGTH);
  free(old);
  return 0;
}

size_t fl_auth_key_count(fl_auth *a) {
  pthread_mutex_lock(&a->mu);
  size_t n = a->nkeys;
  pthread_mutex_unlock(&a->mu);
  return n;
}

int fl_auth_check(fl_auth *a, const char *key, size_t len) {
  unsigned char h[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)key, len, h);
  int found = 0;
  pthread_mutex_lock(&a->mu);
  for (size_t i = 0; i < a->nkeys; i++)
    found |= CRYPTO_memcmp(h, a->hashes[i], sizeof h) == 0;
  pthread_mutex_unlock(&a->mu);
  OPENSSL_cleanse(h, sizeof h);
  return found;
}

/* The client's slot, or NULL (create: a free or the stalest one). Called
 * with the mutex held. */
static slot *find(fl_auth *a, const char *client, int create, long long now) {
  slot *stalest = NULL;
  for (size_t i = 0; i < FL_AUTH_SLOTS; i++) {
    slot *s = &a->slots[i];
    if (s->client[0] && strcmp(s->client, client) == 0) {
      if (now - s->last > FL_AUTH_FORGET_S * 1000LL && now >= s->locked_until) {
        memset(s, 0, sizeof *s); /* quiet long enough: forgotten */
        break;
      }
      return s;
    }
    if (!stalest || !s->client[0] ||
        (stalest->client[0] && s->last < stalest->last))
      stalest = s;
  }
  if (!create)
    return NULL;
  for (size_t i = 0; i < FL_AUTH_SLOTS; i++)
    if (!a->slots[i].client[0]) {
      stalest = &a->slots[i];
      break;
    }
  memset(stalest, 0, sizeof *stalest);
  strncpy(stalest->client, client, CLIENT_MAX - 1);
  return stalest;
}

long fl_auth_locked(fl_auth *a, const char *client, long long now_ms) {
  pthread_mutex_lock(&a->mu);
  slot *s = find(a, client, 0, now_ms);
  long left = s && s->locked_until > now_ms
                  ? (long)((s->locked_until - now_ms + 999) / 1000)
                  : 0;
  pthread_mutex_unlock(&a->mu);
  return left;
}

long fl_auth_failed(fl_auth *a, const char *client, long long now_ms) {
  pthread_mutex_lock(&a->mu);
  slot *s = find(a, client, 1, now_ms);
  s->failures++;
  s->last = now_ms;
  long lock = 0;
  if (s->failures >= FL_AUTH_FREE_FAILURES) {
    int k = s->failures - FL_AUTH_FREE_FAILURES;
    lock = k >= 10 ? FL_AUTH_MAX_LOCK_S : 1L << k;
    if (lock > FL_AUTH_MAX_LOCK_S)
      lock = FL_AUTH_MAX_LOCK_S;
    s->locked_until = now_ms + lock * 1000LL;
  }
  pthread_mutex_unlock(&a->mu);
  return lock;
}

void fl_auth_succeeded(fl_auth *a, const char *client) {
  pthread_mutex_lock(&a->mu);
  for (size_t i = 0; i < FL_AUTH_SLOTS; i++)
    if (a->slots[i].client[0] && strcmp(a->slots[i].client, client) == 0)
      memset(&a->slots[i], 0, sizeof a->slots[i]);
  pthread_mutex_unlock(&a->mu);
}
