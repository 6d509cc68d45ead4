/*
 * engine.h - the transfer engine: concurrent, streamed, verified image copy.
 *
 * The engine owns the worker threads. A caller (the Lua thread) submits
 * image copies and collects their results; nothing here touches Lua. Each
 * image copy runs on a bounded pool of image workers (a job waits in a
 * queue for a free one; submitting never starts a thread) and walks the
 * manifests (index
 * children first, then the index; blobs first, then the manifest that
 * references them) and hands every blob to a bounded pool of blob workers,
 * which skip blobs the destination has, mount blobs another repository of
 * the destination has, and otherwise stream them from source to destination
 * through a verifying pipe (blobcopy.h). Two images that need the same blob
 * at the same destination share one transfer. Results come back through a
 * completion queue that the owning thread drains with fl_engine_wait.
 *
 * Counters are atomics, readable at any time. fl_engine_cancel stops new
 * work and aborts transfers in flight (upload sessions are cancelled);
 * fl_engine_cancel_job does the same for one job only, leaving the others
 * and later jobs alone. fl_engine_free joins every thread, so no thread
 * outlives the engine.
 *
 * Lifetimes: a submitted job holds a reference to its source and
 * destination endpoints (endpoint.h) until fl_engine_wait returns its
 * result, so the caller may drop its own references at any time.
 */
#ifndef FL_ENGINE_ENGINE_H
#define FL_ENGINE_ENGINE_H

#include <stdint.h>

#include "registry/endpoint.h"
#include "registry/manifest.h"

#define FL_MAX_PLATFORMS 16

typedef struct fl_engine fl_engine;

/* Per-image bounds on what a source can make one copy fetch and hold
 * (0 in the config: these). Index children are counted once per digest. */
#define FL_IMAGE_MANIFESTS_DEFAULT 1000
#define FL_IMAGE_MANIFEST_BYTES_DEFAULT (64ULL << 20)

/* Zero fields take their defaults (core/defaults.h). */
typedef struct fl_engine_config {
  int blob_workers;     /* concurrent blob transfers */
  int blob_attempts;    /* attempts per blob copy */
  size_t pipe_capacity; /* bytes buffered per blob copy */
  int image_workers;    /* image jobs running at once; more wait queued */
  double retry_base_ms, retry_max_ms; /* backoff between blob attempts */
  size_t max_image_manifests;         /* distinct manifests per image */
  uint64_t max_image_manifest_bytes;  /* their bytes, together */
} fl_engine_config;

typedef struct fl_copy_opts {
  fl_platform platforms[FL_MAX_PLATFORMS];
  int nplatforms; /* 0: the whole index */
  int referrers;  /* also copy signatures, attestations, SBOMs */
  int force;      /* copy even if the destination tag has the digest */
  int dry_run;    /* only decide: up to date or would copy */
} fl_copy_opts;

typedef struct fl_copy_result {
  fl_code code;
  fl_error err;
  char src_digest[FL_DIGEST_STR_MAX]; /* what the source reference names */
  char digest[FL_DIGEST_STR_MAX];     /* what the destination tag now names */
  int up_to_date;
  int index_rewritten; /* platform filter produced a new index */
  uint64_t bytes;      /* blob bytes sent */
  uint64_t blobs_copied, blobs_skipped, blobs_mounted;
  uint64_t manifests_pushed, referrers_copied;
  double seconds;
} fl_copy_result;

typedef struct fl_counters {
  uint64_t bytes_transferred;
  uint64_t blobs_copied, blobs_skipped, blobs_mounted;
  uint64_t manifests_pushed;
  uint64_t images_replicated, images_up_to_date, images_failed;
  uint64_t jobs_in_flight;
  uint64_t retries; /* requests and blob copies tried again, this engine */
  uint64_t source_manifest_gets; /* manifest GETs at sources (pulls) */
} fl_counters;

fl_code fl_engine_new(const fl_engine_config *cfg, fl_engine **out,
                      fl_error *err);
/* Cancel (if not done) and join every thread; safe on NULL. */
void fl_engine_free(fl_engine *e);

/* Submit an image copy; returns a job id > 0. The job takes its own
 * references to src and dst (dropped when its result is collected). dst_ref: a tag, or "" to push by
 * digest only. */
fl_code fl_engine_submit_copy(fl_engine *e, fl_endpoint *src,
                              const char *src_repo, const char *src_ref,
                              fl_endpoint *dst, const char *dst_repo,
                              const char *dst_ref, const fl_copy_opts *opts,
                              uint64_t *job_id, fl_error *err);

/* Wait up to timeout_ms (-1: forever) for a finished job. Returns its id and
 * fills *out; 0 on timeout or when no job is pending. */
uint64_t fl_engine_wait(fl_engine *e, int timeout_ms, fl_copy_result *out);

/* Jobs submitted and not yet returned by fl_engine_wait. */
uint64_t fl_engine_pending(fl_engine *e);

/* Per-job progress: bytes sent so far and bytes known to be needed. */
typedef struct fl_job_progress {
  uint64_t id;
  uint64_t bytes_done, bytes_total;
  char name[256];
} fl_job_progress;
size_t fl_engine_progress(fl_engine *e, fl_job_progress *out, size_t max);

void fl_engine_counters(fl_engine *e, fl_counters *out);

/* Stop: queued work fails with CANCELLED, transfers in flight abort and
 * their upload sessions are cancelled. Idempotent. */
void fl_engine_cancel(fl_engine *e);

/* Cancel one job, queued or running (its result says CANCELLED); the
 * engine and the other jobs go on. 1 if the job was queued or running, 0 if
 * it had finished or is unknown. */
int fl_engine_cancel_job(fl_engine *e, uint64_t id);

/* Cancel every job queued or running now; later jobs are unaffected (the
 * REPL's Ctrl-C: the statement stops, the next one runs). */
void fl_engine_cancel_jobs(fl_engine *e);

#endif
