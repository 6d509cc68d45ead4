/*
 * jobs.h - the server's job table and the queue to the Lua thread.
 *
 * The table holds one JSON status document per job. HTTP threads create
 * jobs (state "queued") and read documents; the Lua thread, which runs the
 * jobs, replaces a job's whole document in one step (fl_jobs_update), so a
 * reader always sees one complete version, never a half-updated one. Every
 * read returns a copy made under the mutex.
 *
 * Requests for the Lua thread (run a new job, cancel one, reload) go through
 * a bounded FIFO; the number of queued jobs is bounded too. When either is
 * full the HTTP thread answers 503 (load shedding) instead of waiting. The
 * Lua thread takes messages with fl_jobs_next, which can wait on a
 * condition variable for at most a given time.
 *
 * Finished jobs (any state but queued and running) stay listed; past
 * max_kept of them the oldest are dropped from the table.
 */
#ifndef FL_SERVE_JOBS_H
#define FL_SERVE_JOBS_H

#include <jansson.h>
#include <stddef.h>

typedef struct fl_jobs fl_jobs;

typedef enum fl_jobs_kind {
  FL_JOBS_RUN = 1, /* run job id (its document has the request) */
  FL_JOBS_CANCEL,  /* cancel job id */
  FL_JOBS_RELOAD   /* reload the config and keys */
} fl_jobs_kind;

typedef struct fl_jobs_msg {
  fl_jobs_kind kind;
  char id[64];
  char request_id[40];
  char client[64];
} fl_jobs_msg;

#define FL_JOBS_ID_MAX 63

fl_jobs *fl_jobs_new(size_t max_queued, size_t max_kept);
void fl_jobs_free(fl_jobs *t);

/* Create a queued job for request (a JSON object; the table takes its own
 * reference) with trigger "api" | "schedule" | ..., and post FL_JOBS_RUN.
 * 0 and the new id in id_out (>= 64 bytes); -1 when the queue is full. */
int fl_jobs_create(fl_jobs *t, json_t *request, const char *trigger,
                   const char *request_id, const char *client, char *id_out);
/* Ask for job id's cancellation: 0 posted, 404 unknown, 409 finished
 * already, -1 queue full. */
int fl_jobs_cancel(fl_jobs *t, const char *id, const char *request_id,
                   const char *client);
/* Post a message with no job (reload). 0, or -1 queue full. */
int fl_jobs_post(fl_jobs *t, fl_jobs_kind kind, const char *request_id,
                 const char *client);

/* A copy of job id's document (caller decrefs), or NULL. */
json_t *fl_jobs_get(fl_jobs *t, const char *id);
/* {"jobs": [...], "total": N, "offset": O, "next_offset": O+n | null},
 * oldest first. */
json_t *fl_jobs_list(fl_jobs *t, size_t offset, size_t limit);
size_t fl_jobs_queue_depth(fl_jobs *t);
/* Jobs per state, for /metrics: fills counts for the names in states. */
void fl_jobs_count_states(fl_jobs *t, const char *const *states, size_t n,
                          size_t *counts);

/* The Lua thread. Take the next message, waiting up to timeout_ms (0: do
 * not wait). 1 taken, 0 none. */
int fl_jobs_next(fl_jobs *t, int timeout_ms, fl_jobs_msg *out);
/* Replace job id's document (doc must be an object; the table takes its own
 * reference; "id" is forced to id). Adds the job when it is unknown (jobs
 * restored from the state directory). */
int fl_jobs_update(fl_jobs *t, const char *id, json_t *doc);
/* Forget job id. */
void fl_jobs_remove(fl_jobs *t, const char *id);
/* Wake a waiting fl_jobs_next (shutdown). */
void fl_jobs_wake(fl_jobs *t);

/* 1 if state names a finished job. */
int fl_jobs_finished_state(const char *state);

#endif
