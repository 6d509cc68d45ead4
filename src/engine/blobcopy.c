/*
 * blobcopy.c - stream one blob between endpoints, verified (see blobcopy.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "engine/blobcopy.h"
#include "engine/pipe.h"

/* ---- the producer: source download into the pipe ------------------------ */

typedef struct producer {
  const fl_blob_copy *c;
  fl_pipe *pipe;
  fl_code rc;
  fl_error err;
} producer;

static fl_code pipe_sink_write(void *ud, const void *data, size_t len,
                               fl_error *err) {
  return fl_pipe_write(ud, data, len, err);
}

static void *produce(void *arg) {
  producer *p = arg;
  fl_sink sink = {pipe_sink_write, p->pipe};
  p->rc = p->c->src->ops->blob_get(p->c->src, p->c->src_repo,
                                   p->c->desc->digest, 0, &sink, &p->err);
  if (p->rc == FL_OK)
    fl_pipe_close(p->pipe);
  else
    fl_pipe_fail(p->pipe, &p->err);
  return NULL;
}

/* ---- the consumer side: a verifying source over the pipe ---------------- */

typedef struct verifier {
  const fl_blob_copy *c;
  fl_pipe *pipe;
  fl_hasher *hasher;
  uint64_t total;
  int verified;
} verifier;

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

static long long verifier_read(void *ud, void *buf, size_t len, fl_error *err) {
  verifier *v = ud;
  uint64_t size = v->c->desc->size;
  if (v->total == size) {
    if (!v->verified && verify(v, err) != FL_OK)
      return -1;
    return 0;
  }
  if (len > size - v->total)
    len = (size_t)(size - v->total); /* never read past the declared size */
  long long n = fl_pipe_read(v->pipe, buf, len, err);
  if (n < 0)
    return -1;
  if (n == 0) {
    fl_error_set(err, FL_EDIGEST_MISMATCH,
                 "blob %s from %s/%s: the source ended after %llu of %llu "
                 "bytes; nothing was committed",
                 v->c->desc->digest, v->c->src->ops->describe(v->c->src),
                 v->c->src_repo, (unsigned long long)v->total,
                 (unsigned long long)size);
    return -1;
  }
  fl_hasher_update(v->hasher, buf, (size_t)n);
  v->total += (uint64_t)n;
  if (v->total == size && verify(v, err) != FL_OK)
    return -1; /* hold back the last chunk: the upload must not complete */
  if (v->c->progress)
    atomic_fetch_add(v->c->progress, (uint64_t)n);
  return n;
}

fl_code fl_blob_copy_run(const fl_blob_copy *c, fl_error *err) {
  fl_digest_alg alg;
  fl_code rc = fl_digest_parse(c->desc->digest, &alg, err);
  if (rc != FL_OK)
    return rc;
  producer prod = {.c = c, .rc = FL_OK};
  verifier ver = {.c = c};
  pthread_t thread;
  prod.pipe = fl_pipe_new(c->pipe_capacity ? c->pipe_capacity : 512 * 1024);
  ver.pipe = prod.pipe;
  ver.hasher = fl_hasher_new(alg);
  if (!prod.pipe || !ver.hasher) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory starting a blob copy");
    goto out;
  }
  if (pthread_create(&thread, NULL, produce, &prod) != 0) {
    rc = fl_error_set(err, FL_ENOMEM, "cannot start a download thread");
    goto out;
  }
  fl_source src = {verifier_read, NULL, &ver};
  rc = c->dst->ops->blob_put(c->dst, c->dst_repo, c->desc->digest,
                             c->desc->size, &src, err);
  if (rc == FL_OK && !ver.verified) {
    /* the destination already had it and read nothing */
    ver.verified = 1;
  }
  /* Stop the producer whatever happened (it may be blocked on a full pipe,
   * or still sending bytes past the declared size). */
  fl_error stop;
  fl_error_set(&stop, FL_ECANCELLED, "blob copy finished");
  fl_pipe_fail(prod.pipe, &stop);
  pthread_join(thread, NULL);
  if (rc != FL_OK && prod.rc != FL_OK && prod.rc != FL_ECANCELLED) {
    *err = prod.err; /* the source failed: that is the cause to report */
    rc = prod.rc;
  }
out:
  fl_hasher_free(ver.hasher);
  fl_pipe_free(prod.pipe);
  return rc;
}
