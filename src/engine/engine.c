/*
 * engine.c - the transfer engine (see engine.h).
 *
 * Threads: two fixed pools made when the engine is made, and nothing else:
 * image workers (cfg.image_workers) take submitted jobs from the job queue,
 * blob workers (cfg.blob_workers) take blob tasks from the blob queue.
 * Submitting never creates a thread; a job waits in the queue until an
 * image worker is free. Image workers only ever wait on blob tasks, and blob
 * workers never wait on image workers, so the pools cannot deadlock. All
 * shared state (queues, in-flight blobs, known blob locations, finished
 * jobs) is under the one engine lock; counters are atomics. The engine's
 * threads block SIGINT and SIGTERM, so a handler runs on the caller's.
 *
 * Ownership: a job holds a reference to its two endpoints and its cancel
 * token (chained to the engine's) from submit until fl_engine_wait returns
 * its result; the known table holds a reference to each destination it
 * names until the engine is freed. A worker makes the job's token its
 * thread's current token while it works for the job (cancel.h), so every
 * request made for the job stops when the job or the engine is cancelled.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/cancel.h"
#include "core/defaults.h"
#include "core/log.h"
#include "engine/blobcopy.h"
#include "engine/engine.h"

#define KNOWN_BUCKETS 1024
#define KNOWN_MAX 8192 /* oldest forgotten beyond this: memory stays flat */
#define MAX_TREE_DEPTH 4
#define NAME_MAX_LEN 256

typedef struct image_job image_job;

typedef struct blob_task {
  struct blob_task *next;
  image_job *job;
  fl_descriptor desc;
} blob_task;

/* A blob being placed at a destination right now. Tasks for the same blob
 * and destination park on it (instead of blocking their worker) and go back
 * to the head of the queue when it settles: by then the known table says
 * where the blob is, so they skip or mount without a transfer. */
typedef struct inflight {
  struct inflight *next;
  fl_endpoint *dst;
  char digest[FL_DIGEST_STR_MAX];
  blob_task *waiters;
} inflight;

/* A repository of a destination known to hold a blob (for mounts). The
 * table keeps the KNOWN_MAX newest; a forgotten one costs a request. */
typedef struct known {
  struct known *next;  /* in its bucket */
  struct known *newer; /* in insertion order, oldest first */
  fl_endpoint *dst;    /* referenced */
  char digest[FL_DIGEST_STR_MAX];
  char repo[]; /* NUL-terminated */
} known;

struct image_job {
  image_job *next;  /* in the live list, then in the finished queue */
  image_job *qnext; /* in the job queue, until an image worker takes it */
  uint64_t id;
  fl_engine *e;
  fl_cancel *cancel;      /* chained to the engine's */
  fl_endpoint *src, *dst; /* referenced until the result is collected */
  char src_repo[NAME_MAX_LEN], src_ref[FL_DIGEST_STR_MAX + 130];
  char dst_repo[NAME_MAX_LEN], dst_ref[FL_DIGEST_STR_MAX + 130];
  fl_copy_opts opts;
  fl_copy_result result;
  /* blob tasks of this job still running, and the first failure */
  int outstanding;
  fl_code blob_rc;
  fl_error blob_err;
  pthread_cond_t blobs_done;
  _Atomic uint64_t bytes_done, bytes_total, bytes_sent;
  atomic_ullong n_copied, n_skipped, n_mounted;
};

struct fl_engine {
  fl_engine_config cfg;
  fl_cancel *cancel;
  pthread_t *workers; /* blob workers, then image workers */
  int nworkers;
  pthread_mutex_t lock;
  pthread_cond_t work;     /* blob queue non-empty, or stopping */
  pthread_cond_t jobs;     /* job queue non-empty, or stopping */
  pthread_cond_t finished; /* a job moved to the finished queue */
  blob_task *qhead, *qtail;
  image_job *jq_head, *jq_tail;
  int stopping;
  image_job *live; /* submitted, not finished (queued or running) */
  image_job *done_head, *done_tail;
  uint64_t next_id;
  uint64_t pending;
  inflight *inflight;
  known *known[KNOWN_BUCKETS];
  known *known_oldest, *known_newest;
  size_t nknown;
  atomic_ullong bytes, copied, skipped, mounted, manifests, replicated,
      up_to_date, failed;
  atomic_ullong source_manifest_gets; /* pulls, on Docker Hub */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- known blob locations ------------------------------------------------- */

static unsigned known_bucket(fl_endpoint *dst, const char *digest) {
  unsigned h = (unsigned)(uintptr_t)dst;
  for (const char *p = digest; *p; p++)
    h = h * 31u + (unsigned char)*p;
  return h % KNOWN_BUCKETS;
}

/* Locked. Is the blob known to be in `repo` of dst? If not, copy into
 * `from` (size n) another repository of dst known to have it, or "". */
static int known_lookup(fl_engine *e, fl_endpoint *dst, const char *digest,
                        const char *repo, char *from, size_t n) {
  from[0] = '\0';
  for (known *k = e->known[known_bucket(dst, digest)]; k; k = k->next) {
    if (k->dst != dst || strcmp(k->digest, digest) != 0)
      continue;
    if (strcmp(k->repo, repo) == 0)
      return 1;
    if (!from[0])
      snprintf(from, n, "%s", k->repo);
  }
  return 0;
}

/* Locked. Take the oldest entry out of the table; the caller frees it. */
static known *known_evict(fl_engine *e) {
  known *old = e->known_oldest;
  e->known_oldest = old->newer;
  if (!e->known_oldest)
    e->known_newest = NULL;
  for (known **pp = &e->known[known_bucket(old->dst, old->digest)]; *pp;
       pp = &(*pp)->next)
    if (*pp == old) {
      *pp = old->next;
      break;
    }
  e->nknown--;
  return old;
}

static void known_add(fl_engine *e, fl_endpoint *dst, const char *digest,
                      const char *repo) {
  known *evicted = NULL;
  pthread_mutex_lock(&e->lock);
  unsigned b = known_bucket(dst, digest);
  known *k = e->known[b];
  for (; k; k = k->next)
    if (k->dst == dst && strcmp(k->digest, digest) == 0 &&
        strcmp(k->repo, repo) == 0)
      break;
  size_t rl = strlen(repo);
  if (!k && (k = calloc(1, sizeof *k + rl + 1)) != NULL) {
    k->dst = fl_endpoint_ref(dst);
    snprintf(k->digest, sizeof k->digest, "%s", digest);
    memcpy(k->repo, repo, rl + 1);
    k->next = e->known[b];
    e->known[b] = k;
    if (e->known_newest)
      e->known_newest->newer = k;
    else
      e->known_oldest = k;
    e->known_newest = k;
    if (++e->nknown > KNOWN_MAX)
      evicted = known_evict(e);
  }
  pthread_mutex_unlock(&e->lock);
  if (evicted) {
    fl_endpoint_unref(evicted->dst); /* may free it: not under the lock */
    free(evicted);
  }
}

/* ---- one blob ------------------------------------------------------------- */

/* Whole-blob failures another try may fix (after a backoff). DIGEST_MISMATCH is one: bytes
 * corrupted in transit differ on the next try (a source whose stored bytes
 * are corrupt fails every try, and the error is reported after the last). */
static int retryable(fl_code rc) {
  return rc == FL_EUNREACHABLE || rc == FL_ETIMEOUT || rc == FL_ESERVER ||
         rc == FL_EPROTOCOL || rc == FL_EDIGEST_MISMATCH ||
         rc == FL_ERATE_LIMITED; /* a 429 on a streamed upload */
}

typedef enum { BLOB_COPIED, BLOB_SKIPPED, BLOB_MOUNTED } blob_outcome;

/* Copy the bytes, retrying whole-blob failures that another try may fix.
 * *how: BLOB_COPIED, or BLOB_SKIPPED when the destination's upload found
 * the blob there already (nothing sent). */
static fl_code copy_bytes(fl_engine *e, image_job *j, const fl_descriptor *d,
                          blob_outcome *how, fl_error *err) {
  fl_code rc = FL_OK;
  for (int attempt = 1; attempt <= e->cfg.blob_attempts; attempt++) {
    _Atomic uint64_t sent = 0;
    int present = 0;
    fl_blob_copy c = {.src = j->src,
                      .src_repo = j->src_repo,
                      .dst = j->dst,
                      .dst_repo = j->dst_repo,
                      .desc = d,
                      .pipe_capacity = e->cfg.pipe_capacity,
                      .progress = &sent,
                      .present = &present};
    rc = fl_blob_copy_run(&c, err);
    uint64_t n = atomic_load(&sent);
    atomic_fetch_add(&j->bytes_done, n);
    if (rc == FL_OK && present) {
      *how = BLOB_SKIPPED;
      return FL_OK;
    }
    if (rc == FL_OK) {
      *how = BLOB_COPIED;
      atomic_fetch_add(&j->bytes_sent, d->size);
      atomic_fetch_add(&e->bytes, d->size);
      return FL_OK;
    }
    atomic_fetch_sub(&j->bytes_done, n);
    if (!retryable(rc) || fl_cancel_is_set(j->cancel) ||
        attempt == e->cfg.blob_attempts)
      break;
    int named = strstr(err->msg, d->digest) != NULL;
    fl_log(FL_LOG_WARN, NULL, "%s%s%s%s; trying again (%d of %d)",
           named ? "" : "blob ", named ? "" : d->digest, named ? "" : ": ",
           err->msg, attempt + 1, e->cfg.blob_attempts);
    fl_cancel_count_retry(j->cancel);
    long long wait =
        fl_backoff_ms(attempt, e->cfg.retry_base_ms, e->cfg.retry_max_ms);
    if (fl_cancel_sleep_ms(j->cancel, wait, NULL) != FL_OK)
      return fl_error_set(err, FL_ECANCELLED, "cancelled");
  }
  return rc;
}

static fl_code try_mount(image_job *j, const fl_descriptor *d,
                         const char *from) {
  fl_error merr;
  fl_code rc =
      j->dst->ops->blob_mount(j->dst, j->dst_repo, from, d->digest, &merr);
  if (rc != FL_OK)
    fl_log(FL_LOG_DEBUG, NULL, "mount of %s from %s into %s failed (%s)",
           d->digest, from, j->dst_repo, merr.msg);
  return rc;
}

/* Make the blob present at the destination repository, cheapest way first:
 * known to be there already (this run placed it: no request), mount from a
 * repository this run knows has it, or from the source repository when
 * source and destination are one store (one request, no HEAD first: a
 * registry that has the blob in the target repository answers a mount with
 * 201 too), else upload. On a registry the upload finds a blob that is
 * there already by itself (upload_finds_present: its first request asks);
 * other stores get a HEAD (blob_exists) first. */
static fl_code place_blob(fl_engine *e, image_job *j, const fl_descriptor *d,
                          blob_outcome *how, fl_error *err) {
  char from[NAME_MAX_LEN];
  pthread_mutex_lock(&e->lock);
  int here = known_lookup(e, j->dst, d->digest, j->dst_repo, from, sizeof from);
  pthread_mutex_unlock(&e->lock);
  if (here) {
    *how = BLOB_SKIPPED;
    return FL_OK;
  }
  if (!from[0] && j->src == j->dst && strcmp(j->src_repo, j->dst_repo) != 0)
    snprintf(from, sizeof from, "%s", j->src_repo);
  if (from[0] && try_mount(j, d, from) == FL_OK) {
    *how = BLOB_MOUNTED;
    return FL_OK;
  }
  if (!j->dst->ops->upload_finds_present) {
    uint64_t size = 0;
    fl_code rc =
        j->dst->ops->blob_exists(j->dst, j->dst_repo, d->digest, &size, err);
    if (rc != FL_ENOT_FOUND) {
      *how = BLOB_SKIPPED; /* FL_OK: there already */
      return rc;
    }
  }
  return copy_bytes(e, j, d, how, err);
}

static void count_placed(fl_engine *e, image_job *j, const fl_descriptor *d,
                         blob_outcome how) {
  if (how == BLOB_SKIPPED) {
    atomic_fetch_add(&j->n_skipped, 1);
    atomic_fetch_add(&e->skipped, 1);
  } else if (how == BLOB_MOUNTED) {
    atomic_fetch_add(&j->n_mounted, 1);
    atomic_fetch_add(&e->mounted, 1);
  } else {
    atomic_fetch_add(&j->n_copied, 1);
    atomic_fetch_add(&e->copied, 1);
  }
  if (how != BLOB_COPIED)
    atomic_fetch_add(&j->bytes_done, d->size);
}

/* Locked. The transfer of this blob to this destination in flight, if any. */
static inflight *inflight_find(fl_engine *e, fl_endpoint *dst,
                               const char *digest) {
  for (inflight *f = e->inflight; f; f = f->next)
    if (f->dst == dst && strcmp(f->digest, digest) == 0)
      return f;
  return NULL;
}

/* Locked. Take f off the in-flight list and put its waiters back at the head
 * of the queue. */
static void inflight_settle(fl_engine *e, inflight *f) {
  for (inflight **pp = &e->inflight; *pp; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  if (f->waiters) {
    blob_task *last = f->waiters;
    while (last->next)
      last = last->next;
    last->next = e->qhead;
    if (!e->qhead)
      e->qtail = last;
    e->qhead = f->waiters;
    pthread_cond_broadcast(&e->work);
  }
  free(f);
}

/* Locked on entry and exit. Place one blob (the lock is dropped meanwhile),
 * unless the same blob is on its way to the same destination: then park the
 * task on that transfer and return 0 (the task is not finished). */
static int run_blob(fl_engine *e, blob_task *t, fl_code *rc, fl_error *err) {
  image_job *j = t->job;
  const fl_descriptor *d = &t->desc;
  if (fl_cancel_is_set(j->cancel)) {
    *rc = fl_error_set(err, FL_ECANCELLED, "cancelled");
    return 1;
  }
  inflight *f = inflight_find(e, j->dst, d->digest);
  if (f) {
    t->next = f->waiters;
    f->waiters = t;
    return 0;
  }
  f = calloc(1, sizeof *f); /* if NULL: no sharing, still correct */
  if (f) {
    f->dst = j->dst;
    snprintf(f->digest, sizeof f->digest, "%s", d->digest);
    f->next = e->inflight;
    e->inflight = f;
  }
  pthread_mutex_unlock(&e->lock);

  blob_outcome how = BLOB_COPIED;
  fl_cancel *prev = fl_cancel_set_current(j->cancel);
  *rc = place_blob(e, j, d, &how, err);
  fl_cancel_set_current(prev);
  if (*rc == FL_OK) {
    known_add(e, j->dst, d->digest, j->dst_repo);
    count_placed(e, j, d, how);
  }

  pthread_mutex_lock(&e->lock);
  if (f)
    inflight_settle(e, f);
  return 1;
}

/* Locked. A task is done: record the job's first failure, wake the job
 * when it was its last. */
static void finish_task(blob_task *t, fl_code rc, const fl_error *err) {
  image_job *j = t->job;
  if (rc != FL_OK && j->blob_rc == FL_OK) {
    j->blob_rc = rc;
    j->blob_err = *err;
  }
  /* the image thread wakes when all are done, or at a failure (to take
   * the image's queued blobs back: see transfer_blobs) */
  if (--j->outstanding == 0 || rc != FL_OK)
    pthread_cond_signal(&j->blobs_done);
  free(t);
}

/* Locked. Tasks of cancelled jobs parked on another job's transfer end
 * now, rather than when that transfer settles. */
static void drop_cancelled_waiters(fl_engine *e) {
  fl_error err;
  fl_error_set(&err, FL_ECANCELLED, "cancelled");
  for (inflight *f = e->inflight; f; f = f->next)
    for (blob_task **pp = &f->waiters; *pp;) {
      blob_task *t = *pp;
      if (fl_cancel_is_set(t->job->cancel)) {
        *pp = t->next;
        finish_task(t, FL_ECANCELLED, &err);
      } else {
        pp = &t->next;
      }
    }
}

static void *blob_worker(void *arg) {
  fl_engine *e = arg;
  pthread_mutex_lock(&e->lock);
  for (;;) {
    while (!e->qhead && !e->stopping)
      pthread_cond_wait(&e->work, &e->lock);
    if (!e->qhead)
      break; /* stopping and drained */
    blob_task *t = e->qhead;
    e->qhead = t->next;
    if (!e->qhead)
      e->qtail = NULL;
    t->next = NULL;

    fl_error err;
    fl_code rc = FL_OK;
    if (!run_blob(e, t, &rc, &err))
      continue; /* parked on the same blob in flight */
    finish_task(t, rc, &err);
  }
  pthread_mutex_unlock(&e->lock);
  return NULL;
}

/* ---- the manifest tree of one image --------------------------------------- */

/* A set of digest strings (open addressing, FNV-1a), so that a manifest
 * naming the same blob or child 40,000 times costs 40,000 lookups, not 40,000
 * squared comparisons. */
typedef struct digest_set {
  char **slots;
  size_t cap, n; /* cap: 0 or a power of two */
} digest_set;

static size_t digest_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

static void dset_clear(digest_set *s) {
  for (size_t i = 0; i < s->cap; i++)
    free(s->slots[i]);
  free(s->slots);
  memset(s, 0, sizeof *s);
}

/* 1: added; 0: already there; -1: out of memory (the set is unchanged). */
static int dset_add(digest_set *s, const char *d) {
  if (2 * (s->n + 1) > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    char **slots = calloc(cap, sizeof *slots);
    if (!slots)
      return -1;
    for (size_t i = 0; i < s->cap; i++) {
      if (!s->slots[i])
        continue;
      size_t k = digest_hash(s->slots[i]) & (cap - 1);
      while (slots[k])
        k = (k + 1) & (cap - 1);
      slots[k] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
  }
  size_t k = digest_hash(d) & (s->cap - 1);
  for (; s->slots[k]; k = (k + 1) & (s->cap - 1))
    if (strcmp(s->slots[k], d) == 0)
      return 0;
  if (!(s->slots[k] = strdup(d)))
    return -1;
  s->n++;
  return 1;
}

typedef struct tree {
  fl_manifest *nodes; /* children before parents; the root last */
  size_t n, cap;
  fl_descriptor *blobs; /* unique */
  size_t nblobs, capblobs;
  digest_set blob_set;     /* the digests in blobs */
  digest_set manifest_set; /* every manifest digest listed so far */
  uint64_t manifest_bytes; /* bytes of the manifests fetched */
} tree;

static void tree_clear(tree *t) {
  for (size_t i = 0; i < t->n; i++)
    fl_manifest_clear(&t->nodes[i]);
  free(t->nodes);
  free(t->blobs);
  dset_clear(&t->blob_set);
  dset_clear(&t->manifest_set);
  memset(t, 0, sizeof *t);
}

static fl_code tree_add_blob(tree *t, const fl_descriptor *d) {
  if (t->nblobs == t->capblobs) {
    size_t cap = t->capblobs ? t->capblobs * 2 : 16;
    fl_descriptor *b = realloc(t->blobs, cap * sizeof *b);
    if (!b)
      return FL_ENOMEM;
    t->blobs = b;
    t->capblobs = cap;
  }
  int added = dset_add(&t->blob_set, d->digest);
  if (added < 0)
    return FL_ENOMEM;
  if (added)
    t->blobs[t->nblobs++] = *d;
  return FL_OK;
}

/* Count manifest `m` (just fetched) against the image's byte bound. */
static fl_code tree_count_bytes(image_job *j, tree *t, const fl_manifest *m,
                                fl_error *err) {
  uint64_t max = j->e->cfg.max_image_manifest_bytes
                     ? j->e->cfg.max_image_manifest_bytes
                     : FL_IMAGE_MANIFEST_BYTES_DEFAULT;
  t->manifest_bytes += m->len;
  if (t->manifest_bytes > max)
    return fl_error_set(err, FL_ETOO_LARGE,
                        "%s:%s: its manifests add up to over %llu bytes "
                        "(max_image_manifest_bytes)",
                        j->src_repo, j->src_ref, (unsigned long long)max);
  return FL_OK;
}

/* List manifest digest `d` in the image; *fresh says whether it was not
 * listed before (only then is it fetched). Fails once the image lists more
 * distinct manifests than the bound. */
static fl_code tree_list_manifest(image_job *j, tree *t, const char *d,
                                  int *fresh, fl_error *err) {
  size_t max = j->e->cfg.max_image_manifests ? j->e->cfg.max_image_manifests
                                             : FL_IMAGE_MANIFESTS_DEFAULT;
  int added = dset_add(&t->manifest_set, d);
  if (added < 0)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  *fresh = added;
  if (t->manifest_set.n > max)
    return fl_error_set(err, FL_ETOO_LARGE,
                        "%s:%s: the image lists over %zu distinct manifests "
                        "(max_image_manifests)",
                        j->src_repo, j->src_ref, max);
  return FL_OK;
}

static fl_code tree_add_node(tree *t, fl_manifest *m) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 8;
    fl_manifest *nodes = realloc(t->nodes, cap * sizeof *nodes);
    if (!nodes)
      return FL_ENOMEM;
    t->nodes = nodes;
    t->cap = cap;
  }
  t->nodes[t->n++] = *m;
  memset(m, 0, sizeof *m);
  return FL_OK;
}

/* Every manifest GET at the source goes through here: on Docker Hub each
 * one counts as a pull (a HEAD does not), so the run reports how many. */
static fl_code src_manifest_get(image_job *j, const char *ref, fl_manifest *m,
                                fl_error *err) {
  atomic_fetch_add(&j->e->source_manifest_gets, 1);
  return j->src->ops->manifest_get(j->src, j->src_repo, ref, m, err);
}

static int platform_wanted(const fl_copy_opts *o, const fl_ref_desc *r) {
  if (o->nplatforms == 0)
    return 1;
  if (!r->has_platform)
    return 0;
  for (int i = 0; i < o->nplatforms; i++)
    if (fl_platform_match(&o->platforms[i], &r->platform))
      return 1;
  return 0;
}

/* An index listing only the chosen children: same JSON, manifests filtered
 * (a new digest, which the result reports). */
static fl_code filter_index(fl_manifest *m, const fl_copy_opts *o,
                            int *rewritten, fl_error *err) {
  json_t *root = json_loadb(m->data, m->len, 0, NULL);
  json_t *list = json_object_get(root, "manifests");
  json_t *kept = json_array();
  fl_code rc = FL_OK;
  size_t i;
  json_t *item;
  if (!json_is_array(list) || !kept) {
    rc = fl_error_set(err, FL_EINVALID, "index has no manifests array");
    goto out;
  }
  json_array_foreach(list, i, item) {
    json_t *p = json_object_get(item, "platform");
    fl_ref_desc r;
    memset(&r, 0, sizeof r);
    if (json_is_object(p)) {
      r.has_platform = 1;
      snprintf(r.platform.os, sizeof r.platform.os, "%s",
               json_string_value(json_object_get(p, "os"))
                   ? json_string_value(json_object_get(p, "os"))
                   : "");
      snprintf(r.platform.architecture, sizeof r.platform.architecture, "%s",
               json_string_value(json_object_get(p, "architecture"))
                   ? json_string_value(json_object_get(p, "architecture"))
                   : "");
      const char *v = json_string_value(json_object_get(p, "variant"));
      snprintf(r.platform.variant, sizeof r.platform.variant, "%s", v ? v : "");
    }
    if (platform_wanted(o, &r))
      json_array_append(kept, item);
  }
  if (json_array_size(kept) == json_array_size(list))
    goto out; /* nothing filtered: keep the bytes, and the digest */
  if (json_array_size(kept) == 0) {
    rc = fl_error_set(err, FL_ENOT_FOUND,
                      "no manifest in the index matches the platforms asked "
                      "for");
    goto out;
  }
  json_object_set(root, "manifests", kept);
  char *data = json_dumps(root, JSON_COMPACT);
  if (!data) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
    goto out;
  }
  free(m->data);
  m->data = data;
  m->len = strlen(data);
  fl_digest_buffer(FL_SHA256, m->data, m->len, m->digest);
  *rewritten = 1;
out:
  json_decref(kept);
  json_decref(root);
  return rc;
}

/* Fetch manifest `ref` and everything under it into t (children first).
 * `have`, when not NULL, is manifest `ref` already fetched: it is moved in
 * (and cleared) rather than fetched again. Each distinct child is fetched
 * once, however often the tree names it; the image's distinct manifests and
 * their bytes are bounded (max_image_manifests, max_image_manifest_bytes),
 * and an index listing more children than that fails before any is
 * fetched. */
static fl_code collect(image_job *j, const char *ref, fl_manifest *have,
                       int depth, tree *t, fl_error *err) {
  fl_manifest m;
  fl_manifest_info info;
  fl_code rc = FL_OK;
  char *fresh = NULL; /* per ref of an index: first time listed */
  if (depth > MAX_TREE_DEPTH) {
    if (have)
      fl_manifest_clear(have);
    return fl_error_set(err, FL_EINVALID, "manifests nest too deeply");
  }
  if (depth == 0) {
    int root_fresh;
    if ((rc = tree_list_manifest(j, t, ref, &root_fresh, err)) != FL_OK) {
      if (have)
        fl_manifest_clear(have);
      return rc;
    }
  }
  if (have) {
    m = *have;
    memset(have, 0, sizeof *have);
  } else if ((rc = src_manifest_get(j, ref, &m, err)) != FL_OK) {
    return rc;
  }
  if (depth == 0 && j->opts.nplatforms > 0 &&
      fl_media_type_is_index(m.media_type)) {
    rc = filter_index(&m, &j->opts, &j->result.index_rewritten, err);
    if (rc != FL_OK)
      goto out_manifest;
  }
  if ((rc = tree_count_bytes(j, t, &m, err)) != FL_OK)
    goto out_manifest;
  rc = fl_manifest_parse(&m, &info, err);
  if (rc != FL_OK)
    goto out_manifest;
  if (info.is_index && info.nrefs &&
      !(fresh = calloc(info.nrefs, sizeof *fresh)))
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
  /* every child is listed (and counted) before the first is fetched */
  for (size_t i = 0; fresh && i < info.nrefs && rc == FL_OK; i++) {
    int f = 0;
    if (info.refs[i].role == FL_ROLE_MANIFEST)
      rc = tree_list_manifest(j, t, info.refs[i].desc.digest, &f, err);
    fresh[i] = (char)f;
  }
  for (size_t i = 0; i < info.nrefs && rc == FL_OK; i++) {
    fl_ref_desc *r = &info.refs[i];
    if (r->role == FL_ROLE_MANIFEST) {
      if (fresh && fresh[i])
        rc = collect(j, r->desc.digest, NULL, depth + 1, t, err);
    } else if (r->role != FL_ROLE_SUBJECT &&
               tree_add_blob(t, &r->desc) != FL_OK) {
      rc = fl_error_set(err, FL_ENOMEM, "out of memory");
    }
  }
  free(fresh);
  fl_manifest_info_clear(&info);
  if (rc == FL_OK && tree_add_node(t, &m) != FL_OK)
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
out_manifest:
  fl_manifest_clear(&m);
  return rc;
}

/* Locked. Take the job's blob tasks that no worker has started off the
 * queue: the image has failed, so they are not worth a request. */
static void unqueue_job(fl_engine *e, image_job *j) {
  blob_task *prev = NULL, *next;
  for (blob_task *bt = e->qhead; bt; bt = next) {
    next = bt->next;
    if (bt->job != j) {
      prev = bt;
      continue;
    }
    if (prev)
      prev->next = next;
    else
      e->qhead = next;
    if (e->qtail == bt)
      e->qtail = prev;
    j->outstanding--;
    free(bt);
  }
}

/* Hand every blob to the pool and wait for all of them. The first blob that
 * fails fails the image: its blobs still queued are dropped at once, and
 * only those already in flight run to their end. */
static fl_code transfer_blobs(image_job *j, tree *t, fl_error *err) {
  fl_engine *e = j->e;
  uint64_t total = 0;
  for (size_t i = 0; i < t->nblobs; i++)
    total += t->blobs[i].size;
  atomic_fetch_add(&j->bytes_total, total);
  pthread_mutex_lock(&e->lock);
  j->blob_rc = FL_OK;
  for (size_t i = 0; i < t->nblobs; i++) {
    blob_task *bt = calloc(1, sizeof *bt);
    if (!bt) {
      if (j->blob_rc == FL_OK) {
        j->blob_rc = fl_error_set(&j->blob_err, FL_ENOMEM, "out of memory");
      }
      break;
    }
    bt->job = j;
    bt->desc = t->blobs[i];
    if (e->qtail)
      e->qtail->next = bt;
    else
      e->qhead = bt;
    e->qtail = bt;
    j->outstanding++;
  }
  pthread_cond_broadcast(&e->work);
  while (j->outstanding > 0) {
    if (j->blob_rc != FL_OK)
      unqueue_job(e, j);
    if (j->outstanding > 0)
      pthread_cond_wait(&j->blobs_done, &e->lock);
  }
  fl_code rc = j->blob_rc;
  if (rc != FL_OK)
    *err = j->blob_err;
  pthread_mutex_unlock(&e->lock);
  return rc;
}

/* Push manifests children first; the root under `tag` (or its digest). */
static fl_code push_tree(image_job *j, tree *t, const char *tag,
                         fl_error *err) {
  for (size_t i = 0; i < t->n; i++) {
    fl_manifest *m = &t->nodes[i];
    int root = i + 1 == t->n;
    const char *ref = root && tag[0] ? tag : m->digest;
    if (fl_cancel_is_set(j->cancel))
      return fl_error_set(err, FL_ECANCELLED, "cancelled");
    fl_code rc = j->dst->ops->manifest_put(j->dst, j->dst_repo, ref, m->data,
                                           m->len, m->media_type, err);
    if (rc != FL_OK)
      return rc;
    j->result.manifests_pushed++;
    atomic_fetch_add(&j->e->manifests, 1);
  }
  return FL_OK;
}

/* Copy the manifest tree under `ref` (`have`: its root, if already
 * fetched), pushing its root as `tag`. */
static fl_code copy_tree(image_job *j, const char *ref, fl_manifest *have,
                         const char *tag, char *root_digest, fl_error *err) {
  tree t;
  memset(&t, 0, sizeof t);
  fl_code rc = collect(j, ref, have, 0, &t, err);
  if (rc == FL_OK)
    rc = transfer_blobs(j, &t, err);
  if (rc == FL_OK)
    rc = push_tree(j, &t, tag, err);
  if (rc == FL_OK && root_digest)
    snprintf(root_digest, FL_DIGEST_STR_MAX, "%s", t.nodes[t.n - 1].digest);
  tree_clear(&t);
  return rc;
}

/* Signatures, attestations, SBOMs: by the referrers API, else cosign's tag
 * scheme (sha256-<hex>, sha256-<hex>.sig/.att/.sbom). */
static fl_code copy_referrers(image_job *j, const char *digest, fl_error *err) {
  fl_manifest idx;
  fl_code rc =
      j->src->ops->referrers(j->src, j->src_repo, digest, NULL, &idx, err);
  if (rc == FL_OK) {
    json_t *root = json_loadb(idx.data, idx.len, 0, NULL);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(root, "manifests"), i, item) {
      const char *d = json_string_value(json_object_get(item, "digest"));
      if (!d || (rc = copy_tree(j, d, NULL, "", NULL, err)) != FL_OK)
        break;
      j->result.referrers_copied++;
    }
    json_decref(root);
    fl_manifest_clear(&idx);
    return rc;
  }
  if (rc != FL_EUNSUPPORTED)
    return rc;
  fl_strlist tags;
  memset(&tags, 0, sizeof tags);
  rc = j->src->ops->tags(j->src, j->src_repo, &tags, err);
  if (rc != FL_OK)
    return rc;
  char prefix[FL_DIGEST_STR_MAX];
  snprintf(prefix, sizeof prefix, "%s", digest);
  char *colon = strchr(prefix, ':');
  if (colon)
    *colon = '-';
  size_t pl = strlen(prefix);
  for (size_t i = 0; i < tags.count && rc == FL_OK; i++) {
    const char *tg = tags.items[i];
    if (strncmp(tg, prefix, pl) != 0 || (tg[pl] != '\0' && tg[pl] != '.'))
      continue;
    rc = copy_tree(j, tg, NULL, tg, NULL, err);
    if (rc == FL_OK)
      j->result.referrers_copied++;
  }
  fl_strlist_clear(&tags);
  return rc;
}

static int is_digest(const char *ref) { return strchr(ref, ':') != NULL; }

static fl_code copy_image(image_job *j, fl_error *err) {
  fl_copy_result *res = &j->result;
  fl_manifest root; /* the source manifest, when fetched before the check */
  char want[FL_DIGEST_STR_MAX]; /* the digest the destination should have */
  fl_code rc;
  memset(&root, 0, sizeof root);
  /* 1. What does the source reference name? A tag is resolved with a HEAD:
   * on Docker Hub a manifest GET counts as a pull and a HEAD does not, so a
   * re-run that finds everything up to date spends no pulls, and a changed
   * tag costs one request more (the GET of its manifest by digest). A
   * platform subset needs the index itself: the rewritten index is computed
   * here, the same bytes every time, so that its digest can be compared. */
  if (j->opts.nplatforms > 0) {
    rc = src_manifest_get(j, j->src_ref, &root, err);
    if (rc != FL_OK)
      return rc;
    snprintf(res->src_digest, sizeof res->src_digest, "%s", root.digest);
    if (fl_media_type_is_index(root.media_type) &&
        (rc = filter_index(&root, &j->opts, &res->index_rewritten, err)) !=
            FL_OK)
      goto out;
  } else if (is_digest(j->src_ref)) {
    snprintf(res->src_digest, sizeof res->src_digest, "%.*s",
             (int)sizeof res->src_digest - 1, j->src_ref);
  } else {
    fl_descriptor sd;
    rc = j->src->ops->manifest_head(j->src, j->src_repo, j->src_ref, &sd, err);
    if (rc != FL_OK)
      return rc;
    snprintf(res->src_digest, sizeof res->src_digest, "%s", sd.digest);
  }
  snprintf(want, sizeof want, "%s", root.data ? root.digest : res->src_digest);
  /* 2. Up to date? One HEAD at the destination. */
  if (j->dst_ref[0] && !j->opts.force) {
    fl_descriptor d;
    fl_error herr;
    rc = j->dst->ops->manifest_head(j->dst, j->dst_repo, j->dst_ref, &d, &herr);
    if (rc == FL_OK && strcmp(d.digest, want) == 0) {
      res->up_to_date = 1;
      snprintf(res->digest, sizeof res->digest, "%s", d.digest);
      if (!j->opts.referrers || j->opts.dry_run)
        goto out;
    } else if (rc != FL_OK && rc != FL_ENOT_FOUND) {
      *err = herr;
      goto out;
    }
  }
  rc = FL_OK;
  if (j->opts.dry_run)
    goto out;
  /* 3. Blobs, then manifests, children before the index. */
  if (!res->up_to_date) {
    rc = copy_tree(j, res->src_digest, root.data ? &root : NULL, j->dst_ref,
                   res->digest, err);
    if (rc != FL_OK)
      goto out;
    if (res->index_rewritten)
      fl_log(FL_LOG_INFO, NULL,
             "%s:%s: platform filter wrote a new index %s (source %s)",
             j->dst_repo, j->dst_ref, res->digest, res->src_digest);
  }
  /* 4. What refers to it. */
  if (j->opts.referrers)
    rc = copy_referrers(j, res->src_digest, err);
out:
  fl_manifest_clear(&root);
  return rc;
}

/* Run one job on an image worker (unlocked), then queue its result. */
static void run_job(image_job *j) {
  fl_engine *e = j->e;
  double t0 = now_s();
  fl_copy_result *res = &j->result;
  fl_cancel *prev = fl_cancel_set_current(j->cancel);
  if (fl_cancel_is_set(j->cancel))
    res->code = fl_error_set(&res->err, FL_ECANCELLED, "cancelled");
  else
    res->code = copy_image(j, &res->err);
  fl_cancel_set_current(prev);
  res->seconds = now_s() - t0;
  res->bytes = atomic_load(&j->bytes_sent);
  res->blobs_copied = atomic_load(&j->n_copied);
  res->blobs_skipped = atomic_load(&j->n_skipped);
  res->blobs_mounted = atomic_load(&j->n_mounted);
  if (!j->opts.dry_run) {
    if (res->code != FL_OK)
      atomic_fetch_add(&e->failed, 1);
    else if (res->up_to_date && res->referrers_copied == 0)
      atomic_fetch_add(&e->up_to_date, 1);
    else
      atomic_fetch_add(&e->replicated, 1);
  }
  pthread_mutex_lock(&e->lock);
  for (image_job **pp = &e->live; *pp; pp = &(*pp)->next)
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  j->next = NULL;
  if (e->done_tail)
    e->done_tail->next = j;
  else
    e->done_head = j;
  e->done_tail = j;
  pthread_cond_broadcast(&e->finished);
  pthread_mutex_unlock(&e->lock);
}

static void *image_worker(void *arg) {
  fl_engine *e = arg;
  pthread_mutex_lock(&e->lock);
  for (;;) {
    while (!e->jq_head && !e->stopping)
      pthread_cond_wait(&e->jobs, &e->lock);
    image_job *j = e->jq_head;
    if (!j)
      break; /* stopping and drained */
    e->jq_head = j->qnext;
    if (!e->jq_head)
      e->jq_tail = NULL;
    j->qnext = NULL;
    pthread_mutex_unlock(&e->lock);
    run_job(j);
    pthread_mutex_lock(&e->lock);
  }
  pthread_mutex_unlock(&e->lock);
  return NULL;
}

/* ---- the public API ------------------------------------------------------- */

/* Start n threads running fn, with SIGINT and SIGTERM blocked in them. */
static fl_code start_workers(fl_engine *e, int n, void *(*fn)(void *)) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  fl_code rc = FL_OK;
  for (int i = 0; i < n && rc == FL_OK; i++) {
    if (pthread_create(&e->workers[e->nworkers], NULL, fn, e) != 0)
      rc = FL_ENOMEM;
    else
      e->nworkers++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

fl_code fl_engine_new(const fl_engine_config *cfg, fl_engine **out,
                      fl_error *err) {
  fl_engine *e = calloc(1, sizeof *e);
  if (!e)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  if (cfg)
    e->cfg = *cfg;
  if (e->cfg.blob_workers <= 0)
    e->cfg.blob_workers = FL_DEFAULT_BLOB_WORKERS;
  if (e->cfg.image_workers <= 0) /* at least one per blob worker */
    e->cfg.image_workers = e->cfg.blob_workers > FL_DEFAULT_IMAGE_WORKERS
                               ? e->cfg.blob_workers
                               : FL_DEFAULT_IMAGE_WORKERS;
  if (e->cfg.blob_attempts <= 0)
    e->cfg.blob_attempts = FL_DEFAULT_BLOB_ATTEMPTS;
  if (e->cfg.pipe_capacity == 0)
    e->cfg.pipe_capacity = FL_DEFAULT_PIPE_CAPACITY;
  if (e->cfg.retry_base_ms <= 0)
    e->cfg.retry_base_ms = FL_DEFAULT_RETRY_BASE_MS;
  if (e->cfg.retry_max_ms <= 0)
    e->cfg.retry_max_ms = FL_DEFAULT_RETRY_MAX_MS;
  pthread_mutex_init(&e->lock, NULL);
  pthread_cond_init(&e->work, NULL);
  pthread_cond_init(&e->jobs, NULL);
  pthread_cond_init(&e->finished, NULL);
  e->cancel = fl_cancel_new(NULL);
  e->workers =
      calloc((size_t)e->cfg.blob_workers + (size_t)e->cfg.image_workers,
             sizeof *e->workers);
  if (!e->workers || !e->cancel) {
    fl_engine_free(e);
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  }
  if (start_workers(e, e->cfg.blob_workers, blob_worker) != FL_OK ||
      start_workers(e, e->cfg.image_workers, image_worker) != FL_OK) {
    fl_engine_free(e);
    return fl_error_set(err, FL_ENOMEM, "cannot start worker threads");
  }
  *out = e;
  return FL_OK;
}

void fl_engine_cancel(fl_engine *e) {
  if (!e || fl_cancel_is_set(e->cancel))
    return;
  fl_cancel_fire(e->cancel);
  pthread_mutex_lock(&e->lock);
  drop_cancelled_waiters(e);
  pthread_cond_broadcast(&e->work);
  pthread_cond_broadcast(&e->jobs);
  pthread_mutex_unlock(&e->lock);
}

int fl_engine_cancel_job(fl_engine *e, uint64_t id) {
  int found = 0;
  pthread_mutex_lock(&e->lock);
  for (image_job *j = e->live; j; j = j->next)
    if (j->id == id) {
      fl_cancel_fire(j->cancel);
      found = 1;
      break;
    }
  if (found)
    drop_cancelled_waiters(e);
  pthread_mutex_unlock(&e->lock);
  return found;
}

void fl_engine_cancel_jobs(fl_engine *e) {
  pthread_mutex_lock(&e->lock);
  for (image_job *j = e->live; j; j = j->next)
    fl_cancel_fire(j->cancel);
  drop_cancelled_waiters(e);
  pthread_mutex_unlock(&e->lock);
}

static void job_free(image_job *j) {
  pthread_cond_destroy(&j->blobs_done);
  fl_endpoint_unref(j->src);
  fl_endpoint_unref(j->dst);
  fl_cancel_unref(j->cancel);
  free(j);
}

void fl_engine_free(fl_engine *e) {
  if (!e)
    return;
  /* Jobs still queued or running: let them finish (cancelled), collect. */
  pthread_mutex_lock(&e->lock);
  int live = e->live != NULL;
  pthread_mutex_unlock(&e->lock);
  if (live)
    fl_engine_cancel(e);
  fl_copy_result r;
  while (fl_engine_pending(e) > 0)
    fl_engine_wait(e, -1, &r);
  pthread_mutex_lock(&e->lock);
  e->stopping = 1;
  pthread_cond_broadcast(&e->work);
  pthread_cond_broadcast(&e->jobs);
  pthread_mutex_unlock(&e->lock);
  for (int i = 0; i < e->nworkers; i++)
    pthread_join(e->workers[i], NULL);
  free(e->workers);
  while (e->known_oldest) {
    known *k = known_evict(e);
    fl_endpoint_unref(k->dst);
    free(k);
  }
  fl_cancel_unref(e->cancel);
  pthread_mutex_destroy(&e->lock);
  pthread_cond_destroy(&e->work);
  pthread_cond_destroy(&e->jobs);
  pthread_cond_destroy(&e->finished);
  free(e);
}

static void copy_name(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

fl_code fl_engine_submit_copy(fl_engine *e, fl_endpoint *src,
                              const char *src_repo, const char *src_ref,
                              fl_endpoint *dst, const char *dst_repo,
                              const char *dst_ref, const fl_copy_opts *opts,
                              uint64_t *job_id, fl_error *err) {
  if (fl_cancel_is_set(e->cancel))
    return fl_error_set(err, FL_ECANCELLED, "the engine was cancelled");
  if (strlen(src_repo) >= NAME_MAX_LEN || strlen(dst_repo) >= NAME_MAX_LEN ||
      strlen(src_ref) >= sizeof((image_job *)0)->src_ref ||
      strlen(dst_ref) >= sizeof((image_job *)0)->dst_ref)
    return fl_error_set(err, FL_EINVALID, "repository or reference too long");
  image_job *j = calloc(1, sizeof *j);
  if (!j)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  j->e = e;
  j->cancel = fl_cancel_new(e->cancel);
  if (!j->cancel) {
    free(j);
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  }
  j->src = fl_endpoint_ref(src);
  j->dst = fl_endpoint_ref(dst);
  copy_name(j->src_repo, sizeof j->src_repo, src_repo);
  copy_name(j->src_ref, sizeof j->src_ref, src_ref);
  copy_name(j->dst_repo, sizeof j->dst_repo, dst_repo);
  copy_name(j->dst_ref, sizeof j->dst_ref, dst_ref);
  if (opts)
    j->opts = *opts;
  pthread_cond_init(&j->blobs_done, NULL);
  pthread_mutex_lock(&e->lock);
  j->id = ++e->next_id;
  j->next = e->live;
  e->live = j;
  e->pending++;
  if (e->jq_tail)
    e->jq_tail->qnext = j;
  else
    e->jq_head = j;
  e->jq_tail = j;
  pthread_cond_signal(&e->jobs);
  pthread_mutex_unlock(&e->lock);
  *job_id = j->id;
  return FL_OK;
}

uint64_t fl_engine_wait(fl_engine *e, int timeout_ms, fl_copy_result *out) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  if (timeout_ms > 0) {
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&e->lock);
  while (!e->done_head && e->pending > 0 && timeout_ms != 0) {
    if (timeout_ms < 0)
      pthread_cond_wait(&e->finished, &e->lock);
    else if (pthread_cond_timedwait(&e->finished, &e->lock, &deadline) != 0)
      break;
  }
  image_job *j = e->done_head;
  if (j) {
    e->done_head = j->next;
    if (!e->done_head)
      e->done_tail = NULL;
    e->pending--;
  }
  pthread_mutex_unlock(&e->lock);
  if (!j)
    return 0;
  *out = j->result;
  uint64_t id = j->id;
  job_free(j);
  return id;
}

uint64_t fl_engine_pending(fl_engine *e) {
  pthread_mutex_lock(&e->lock);
  uint64_t n = e->pending;
  pthread_mutex_unlock(&e->lock);
  return n;
}

size_t fl_engine_progress(fl_engine *e, fl_job_progress *out, size_t max) {
  size_t n = 0;
  pthread_mutex_lock(&e->lock);
  for (image_job *j = e->live; j && n < max; j = j->next, n++) {
    out[n].id = j->id;
    out[n].bytes_done = atomic_load(&j->bytes_done);
    out[n].bytes_total = atomic_load(&j->bytes_total);
    snprintf(out[n].name, sizeof out[n].name, "%.120s:%.128s", j->dst_repo,
             j->dst_ref[0] ? j->dst_ref : "(digest)");
  }
  pthread_mutex_unlock(&e->lock);
  return n;
}

void fl_engine_counters(fl_engine *e, fl_counters *out) {
  out->bytes_transferred = atomic_load(&e->bytes);
  out->blobs_copied = atomic_load(&e->copied);
  out->blobs_skipped = atomic_load(&e->skipped);
  out->blobs_mounted = atomic_load(&e->mounted);
  out->manifests_pushed = atomic_load(&e->manifests);
  out->images_replicated = atomic_load(&e->replicated);
  out->images_up_to_date = atomic_load(&e->up_to_date);
  out->images_failed = atomic_load(&e->failed);
  out->source_manifest_gets = atomic_load(&e->source_manifest_gets);
  out->jobs_in_flight = fl_engine_pending(e);
  out->retries = fl_cancel_retries(e->cancel);
}
