/*
 * blobcopy.c - stream one blob between endpoints, verified (see blobcopy.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "core/log.h"
#include "engine/blobcopy.h"
#include "engine/pipe.h"

/* The hash state is kept every SNAP_EVERY bytes, the last SNAP_KEEP of
 * them, so a seek back (an upload resuming) re-downloads from the snapshot
 * at or before the new position instead of from byte 0. SNAP_EVERY divides
 * the registry's resume chunk sizes, so a resume at a chunk boundary finds
 * a snapshot exactly there. */
#define SNAP_EVERY (8ULL << 20)
#define SNAP_KEEP 8
#define DISCARD_BUF (64 * 1024)

/* ---- the producer: source download into the pipe ------------------------ */

typedef struct producer {
  const fl_blob_copy *c;
  fl_pipe *pipe;
  uint64_t offset;   /* first byte asked of the source */
  fl_cancel *cancel; /* the starting thread's current token, for its GET */
  fl_code rc;
  fl_error err;
} producer;

static fl_code pipe_sink_write(void *ud, const void *data, size_t len,
                               fl_error *err) {
  return fl_pipe_write(ud, data, len, err);
}

static void *produce(void *arg) {
  producer *p = arg;
  fl_cancel_set_current(p->cancel);
  fl_sink sink = {pipe_sink_write, p->pipe};
  p->rc = p->c->src->ops->blob_get(
      p->c->src, p->c->src_repo, p->c->desc->digest, p->offset, &sink, &p->err);
  if (p->rc == FL_OK)
    fl_pipe_close(p->pipe);
  else
    fl_pipe_fail(p->pipe, &p->err);
  return NULL;
}

/* ---- the consumer side: a verifying source over the pipe ---------------- */

typedef struct snapshot {
  uint64_t at; /* the hash of bytes 0..at-1 */
  fl_hasher *h;
} snapshot;

typedef struct verifier {
  const fl_blob_copy *c;
  fl_digest_alg alg;
  fl_pipe *pipe;
  producer prod;
  pthread_t thread;
  int running; /* thread is a producer not yet joined */
  int started; /* a download was ever started (the first read starts it) */
  fl_hasher *hasher;
  uint64_t total;   /* bytes hashed: the position of the next byte served */
  uint64_t counted; /* bytes added to c->progress (never counted twice) */
  int verified;
  snapshot snaps[SNAP_KEEP]; /* ascending by `at`; n_snaps in use */
  size_t n_snaps;
  unsigned char *discard; /* scratch for bytes skipped after a seek */
} verifier;

static fl_code start_producer(verifier *v, uint64_t offset, fl_error *err) {
  v->prod.offset = offset;
  v->prod.cancel = fl_cancel_current(); /* alive until the join */
  v->prod.rc = FL_OK;
  memset(&v->prod.err, 0, sizeof v->prod.err);
  if (pthread_create(&v->thread, NULL, produce, &v->prod) != 0)
    return fl_error_set(err, FL_ENOMEM, "cannot start a download thread");
  v->running = v->started = 1;
  return FL_OK;
}

/* Stop the producer whatever it is doing (blocked on a full pipe, or still
 * sending bytes past the declared size) and join it. */
static void stop_producer(verifier *v, const char *why) {
  if (!v->running)
    return;
  fl_error stop;
  fl_error_set(&stop, FL_ECANCELLED, "%s", why);
  fl_pipe_fail(v->pipe, &stop);
  pthread_join(v->thread, NULL);
  v->running = 0;
}

/* Keep the hash state at v->total (the oldest snapshot goes when full). */
static fl_code take_snapshot(verifier *v) {
  if (v->n_snaps == SNAP_KEEP) {
    fl_hasher *oldest = v->snaps[0].h;
    memmove(&v->snaps[0], &v->snaps[1], (SNAP_KEEP - 1) * sizeof(snapshot));
    v->snaps[SNAP_KEEP - 1].h = oldest;
    v->n_snaps--;
  }
  snapshot *s = &v->snaps[v->n_snaps];
  if (!s->h && !(s->h = fl_hasher_new(v->alg)))
    return FL_ENOMEM;
  if (fl_hasher_copy(s->h, v->hasher) != FL_OK)
    return FL_ENOMEM;
  s->at = v->total;
  v->n_snaps++;
  return FL_OK;
}

/* Hash bytes at v->total, taking a snapshot at every SNAP_EVERY boundary. */
static fl_code hash_bytes(verifier *v, const unsigned char *p, size_t n,
                          fl_error *err) {
  while (n > 0) {
    uint64_t to_mark = SNAP_EVERY - v->total % SNAP_EVERY;
    size_t k = to_mark < n ? (size_t)to_mark : n;
    if (fl_hasher_update(v->hasher, p, k) != FL_OK)
      return fl_error_set(err, FL_ENOMEM, "hashing blob %s failed",
                          v->c->desc->digest);
    v->total += k;
    p += k;
    n -= k;
    if (v->total % SNAP_EVERY == 0 && v->total < v->c->desc->size &&
        take_snapshot(v) != FL_OK)
      return fl_error_set(err, FL_ENOMEM, "out of memory hashing blob %s",
                          v->c->desc->digest);
  }
  return FL_OK;
}

static fl_code verify(verifier *v, fl_error *err) {
  char actual[FL_DIGEST_STR_MAX];
  if (fl_hasher_final(v->hasher, actual) != FL_OK)
    return fl_error_set(err, FL_ENOMEM, "hashing failed");
  if (strcmp(actual, v->c->desc->digest) != 0)
    return fl_error_set(err, FL_EDIGEST_MISMATCH,
                        "blob %s from %s/%s: the source sent content that "
                        "hashes to %s; nothing was committed",
                        v->c->desc->digest, v->c->src->ops->describe(v->c->src),
                        v->c->src_repo, actual);
  v->verified = 1;
  return FL_OK;
}

/* The next n bytes from the pipe into buf (fewer at its end): >0, or -1. */
static long long pull(verifier *v, void *buf, size_t len, fl_error *err) {
  long long n = fl_pipe_read(v->pipe, buf, len, err);
  if (n == 0) {
    fl_error_set(err, FL_EDIGEST_MISMATCH,
                 "blob %s from %s/%s: the source ended after %llu of %llu "
                 "bytes; nothing was committed",
                 v->c->desc->digest, v->c->src->ops->describe(v->c->src),
                 v->c->src_repo, (unsigned long long)v->total,
                 (unsigned long long)v->c->desc->size);
    return -1;
  }
  return n;
}

static long long verifier_read(void *ud, void *buf, size_t len, fl_error *err) {
  verifier *v = ud;
  uint64_t size = v->c->desc->size;
  if (!v->started && start_producer(v, 0, err) != FL_OK)
    return -1;
  if (v->total == size) {
    if (!v->verified && verify(v, err) != FL_OK)
      return -1;
    return 0;
  }
  if (len > size - v->total)
    len = (size_t)(size - v->total); /* never read past the declared size */
  long long n = pull(v, buf, len, err);
  if (n < 0)
    return -1;
  if (hash_bytes(v, buf, (size_t)n, err) != FL_OK)
    return -1;
  if (v->total == size && verify(v, err) != FL_OK)
    return -1; /* hold back the last chunk: the upload must not complete */
  if (v->c->progress && v->total > v->counted) {
    atomic_fetch_add(v->c->progress, v->total - v->counted);
    v->counted = v->total;
  }
  return n;
}

/* Go back to the latest snapshot at or before offset (byte 0 if none):
 * restart the download there. Returns where the hash now stands. */
static fl_code restart_at(verifier *v, uint64_t offset, uint64_t *from,
                          fl_error *err) {
  stop_producer(v, "restarting the download");
  while (v->n_snaps > 0 && v->snaps[v->n_snaps - 1].at > offset)
    v->n_snaps--; /* past the new position: taken again on the way */
  *from = 0;
  if (v->n_snaps > 0) {
    snapshot *s = &v->snaps[v->n_snaps - 1];
    if (fl_hasher_copy(v->hasher, s->h) != FL_OK)
      return fl_error_set(err, FL_ENOMEM, "hashing blob %s failed",
                          v->c->desc->digest);
    *from = s->at;
  } else if (fl_hasher_reset(v->hasher) != FL_OK) {
    return fl_error_set(err, FL_ENOMEM, "hashing blob %s failed",
                        v->c->desc->digest);
  }
  v->total = *from;
  v->verified = 0;
  fl_pipe_reset(v->pipe);
  return start_producer(v, *from, err);
}

static fl_code verifier_seek(void *ud, uint64_t offset, fl_error *err) {
  verifier *v = ud;
  uint64_t size = v->c->desc->size;
  if (offset > size)
    return fl_error_set(err, FL_EINVALID,
                        "blob %s: cannot resume at byte %llu of %llu",
                        v->c->desc->digest, (unsigned long long)offset,
                        (unsigned long long)size);
  if (offset < v->total) {
    uint64_t from;
    fl_code rc = restart_at(v, offset, &from, err);
    if (rc != FL_OK)
      return rc;
    fl_log(FL_LOG_DEBUG, NULL,
           "blob %s: downloading again from byte %llu (hash snapshot) to "
           "go on at byte %llu",
           v->c->desc->digest, (unsigned long long)from,
           (unsigned long long)offset);
  }
  if (!v->started) {
    fl_code rc = start_producer(v, 0, err);
    if (rc != FL_OK)
      return rc;
  }
  if (offset > v->total && !v->discard && !(v->discard = malloc(DISCARD_BUF)))
    return fl_error_set(err, FL_ENOMEM, "out of memory resuming blob %s",
                        v->c->desc->digest);
  while (v->total < offset) { /* hash the bytes the destination has */
    uint64_t want = offset - v->total;
    fl_error e = {FL_OK, ""};
    long long n =
        pull(v, v->discard, want < DISCARD_BUF ? want : DISCARD_BUF, &e);
    if (n >= 0 && hash_bytes(v, v->discard, (size_t)n, &e) == FL_OK)
      continue;
    *err = e;
    return e.code != FL_OK ? e.code : FL_EIO;
  }
  return FL_OK;
}

fl_code fl_blob_copy_run(const fl_blob_copy *c, fl_error *err) {
  fl_digest_alg alg;
  fl_code rc = fl_digest_parse(c->desc->digest, &alg, err);
  if (rc != FL_OK)
    return rc;
  verifier ver = {.c = c, .alg = alg};
  ver.prod.c = c;
  ver.pipe = fl_pipe_new(c->pipe_capacity ? c->pipe_capacity : 512 * 1024);
  ver.prod.pipe = ver.pipe;
  ver.hasher = fl_hasher_new(alg);
  if (!ver.pipe || !ver.hasher) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory starting a blob copy");
    goto out;
  }
  fl_source src = {verifier_read, NULL, &ver, verifier_seek};
  rc = c->dst->ops->blob_put(c->dst, c->dst_repo, c->desc->digest,
                             c->desc->size, &src, err);
  if (c->present) /* the destination already had it and read nothing */
    *c->present = rc == FL_OK && !ver.started;
  int producer_ran = ver.running;
  stop_producer(&ver, "blob copy finished");
  if (rc != FL_OK && producer_ran && ver.prod.rc != FL_OK &&
      ver.prod.rc != FL_ECANCELLED) {
    *err = ver.prod.err; /* the source failed: that is the cause to report */
    rc = ver.prod.rc;
  }
out:
  for (size_t i = 0; i < SNAP_KEEP; i++)
    fl_hasher_free(ver.snaps[i].h);
  free(ver.discard);
  fl_hasher_free(ver.hasher);
  fl_pipe_free(ver.pipe);
  return rc;
}
