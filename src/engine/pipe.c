/*
 * pipe.c - a bounded in-memory byte pipe between two threads (see pipe.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pipe.h"

struct fl_pipe {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  unsigned char *ring;
  size_t cap, head, len; /* data is ring[head .. head+len) modulo cap */
  int closed;
  int failed;
  fl_error failure;
};

fl_pipe *fl_pipe_new(size_t capacity) {
  fl_pipe *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->ring = malloc(capacity);
  if (!p->ring) {
    free(p);
    return NULL;
  }
  p->cap = capacity;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->changed, NULL);
  return p;
}

void fl_pipe_free(fl_pipe *p) {
  if (!p)
    return;
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->changed);
  free(p->ring);
  free(p);
}

static fl_code failed_locked(fl_pipe *p, fl_error *err) {
  if (err)
    *err = p->failure;
  return p->failure.code ? p->failure.code : FL_EIO;
}

fl_code fl_pipe_write(fl_pipe *p, const void *data, size_t len, fl_error *err) {
  const unsigned char *src = data;
  pthread_mutex_lock(&p->lock);
  while (len > 0) {
    while (!p->failed && p->len == p->cap)
      pthread_cond_wait(&p->changed, &p->lock);
    if (p->failed) {
      fl_code rc = failed_locked(p, err);
      pthread_mutex_unlock(&p->lock);
      return rc;
    }
    size_t tail = (p->head + p->len) % p->cap;
    size_t room = p->cap - p->len;
    size_t contiguous = p->cap - tail;
    size_t n = len < room ? len : room;
    if (n > contiguous)
      n = contiguous;
    memcpy(p->ring + tail, src, n);
    p->len += n;
    src += n;
    len -= n;
    pthread_cond_broadcast(&p->changed);
  }
  pthread_mutex_unlock(&p->lock);
  return FL_OK;
}

void fl_pipe_close(fl_pipe *p) {
  pthread_mutex_lock(&p->lock);
  p->closed = 1;
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
}

long long fl_pipe_read(fl_pipe *p, void *buf, size_t len, fl_error *err) {
  pthread_mutex_lock(&p->lock);
  while (!p->failed && p->len == 0 && !p->closed)
    pthread_cond_wait(&p->changed, &p->lock);
  if (p->failed) {
    failed_locked(p, err);
    pthread_mutex_unlock(&p->lock);
    return -1;
  }
  size_t n = p->len < len ? p->len : len;
  size_t contiguous = p->cap - p->head;
  size_t first = n < contiguous ? n : contiguous;
  memcpy(buf, p->ring + p->head, first);
  memcpy((unsigned char *)buf + first, p->ring, n - first);
  p->head = (p->head + n) % p->cap;
  p->len -= n;
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
  return (long long)n;
}

void fl_pipe_fail(fl_pipe *p, const fl_error *err) {
  pthread_mutex_lock(&p->lock);
  if (!p->failed) {
    p->failed = 1;
    p->failure = *err;
  }
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
}

void fl_pipe_reset(fl_pipe *p) {
  pthread_mutex_lock(&p->lock);
  p->head = p->len = 0;
  p->closed = p->failed = 0;
  memset(&p->failure, 0, sizeof p->failure);
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
}
