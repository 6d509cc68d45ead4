/*
 * jobs.c - the job table and the Lua thread's queue (see jobs.h).
 */
#include "serve/jobs.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
  char id[64];
  json_t *doc;
} job;

struct fl_jobs {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job *jobs; /* oldest first */
  size_t njobs, cap;
  fl_jobs_msg *queue; /* ring */
  size_t head, count, qcap;
  size_t max_queued, max_kept;
  int woken;
};

int fl_jobs_finished_state(const char *state) {
  return state && strcmp(state, "queued") != 0 &&
         strcmp(state, "running") != 0 && strcmp(state, "cancelling") != 0;
}

fl_jobs *fl_jobs_new(size_t max_queued, size_t max_kept) {
  fl_jobs *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->qcap = max_queued * 2 + 8; /* room for cancels and reloads too */
  t->queue = calloc(t->qcap, sizeof *t->queue);
  if (!t->queue) {
    free(t);
    return NULL;
  }
  t->max_queued = max_queued;
  t->max_kept = max_kept;
  pthread_mutex_init(&t->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&t->cv, &ca);
  pthread_condattr_destroy(&ca);
  return t;
}

void fl_jobs_free(fl_jobs *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->njobs; i++)
    json_decref(t->jobs[i].doc);
  free(t->jobs);
  free(t->queue);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
}

static const char *state_of(const job *j) {
  return json_string_value(json_object_get(j->doc, "state"));
}

static job *find(fl_jobs *t, const char *id) {
  for (size_t i = t->njobs; i-- > 0;)
    if (strcmp(t->jobs[i].id, id) == 0)
      return &t->jobs[i];
  return NULL;
}

static size_t queued_jobs(fl_jobs *t) {
  size_t n = 0;
  for (size_t i = 0; i < t->njobs; i++) {
    const char *s = state_of(&t->jobs[i]);
    if (s && strcmp(s, "queued") == 0)
      n++;
  }
  return n;
}

/* Drop the oldest finished jobs past max_kept. Mutex held. */
static void trim(fl_jobs *t) {
  size_t finished = 0;
  for (size_t i = 0; i < t->njobs; i++)
    finished += fl_jobs_finished_state(state_of(&t->jobs[i]));
  size_t i = 0;
  while (finished > t->max_kept && i < t->njobs) {
    if (fl_jobs_finished_state(state_of(&t->jobs[i]))) {
      json_decref(t->jobs[i].doc);
      memmove(&t->jobs[i], &t->jobs[i + 1],
              (t->njobs - i - 1) * sizeof *t->jobs);
      t->njobs--;
      finished--;
    } else {
      i++;
    }
  }
}

static int push_msg(fl_jobs *t, fl_jobs_kind kind, const char *id,
                    const char *request_id, const char *client) {
  if (t->count == t->qcap)
    return -1;
  fl_jobs_msg *m = &t->queue[(t->head + t->count) % t->qcap];
  memset(m, 0, sizeof *m);
  m->kind = kind;
  snprintf(m->id, sizeof m->id, "%s", id ? id : "");
  snprintf(m->request_id, sizeof m->request_id, "%s",
           request_id ? request_id : "");
  snprintf(m->client, sizeof m->client, "%s", client ? client : "");
  t->count++;
  pthread_cond_signal(&t->cv);
  return 0;
}

static int append(fl_jobs *t, const char *id, json_t *doc) {
  if (t->njobs == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    job *j = realloc(t->jobs, cap * sizeof *j);
    if (!j)
      return -1;
    t->jobs = j;
    t->cap = cap;
  }
  job *j = &t->jobs[t->njobs++];
  snprintf(j->id, sizeof j->id, "%s", id);
  j->doc = doc;
  return 0;
}

static void new_id(char *out) {
  unsigned char r[6];
  if (RAND_bytes(r, sizeof r) != 1) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memcpy(r, &ts.tv_nsec,
           sizeof r < sizeof ts.tv_nsec ? sizeof r : sizeof ts.tv_nsec);
  }
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  snprintf(out, 64, "%s-%02x%02x%02x%02x%02x%02x", stamp, r[0], r[1], r[2],
           r[3], r[4], r[5]);
}

static void iso_now(char *out, size_t n) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int fl_jobs_create(fl_jobs *t, json_t *request, const char *trigger,
                   const char *request_id, const char *client, char *id_out) {
  char created[32];
  iso_now(created, sizeof created);
  new_id(id_out);
  json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id_out, "state",
                          "queued", "trigger", trigger, "created", created,
                          "request", json_deep_copy(request));
  if (!doc)
    return -1;
  pthread_mutex_lock(&t->mu);
  int rc = -1;
  if (queued_jobs(t) < t->max_queued && t->count < t->qcap &&
      append(t, id_out, doc) == 0) {
    rc = push_msg(t, FL_JOBS_RUN, id_out, request_id, client);
    doc = NULL;
  }
  pthread_mutex_unlock(&t->mu);
  json_decref(doc);
  return rc;
}

int fl_jobs_cancel(fl_jobs *t, const char *id, const char *request_id,
                   const char *client) {
  pthread_mutex_lock(&t->mu);
  job *j = find(t, id);
  int rc = !j ? 404
           : fl_jobs_finished_state(state_of(j))
               ? 409
               : push_msg(t, FL_JOBS_CANCEL, id, request_id, client);
  pthread_mutex_unlock(&t->mu);
  return rc;
}

int fl_jobs_post(fl_jobs *t, fl_jobs_kind kind, const char *request_id,
                 const char *client) {
  pthread_mutex_lock(&t->mu);
  int rc = push_msg(t, kind, NULL, request_id, client);
  pthread_mutex_unlock(&t->mu);
  return rc;
}

json_t *fl_jobs_get(fl_jobs *t, const char *id) {
  pthread_mutex_lock(&t->mu);
  job *j = find(t, id);
  json_t *copy = j ? json_deep_copy(j->doc) : NULL;
  pthread_mutex_unlock(&t->mu);
  return copy;
}

json_t *fl_jobs_list(fl_jobs *t, size_t offset, size_t limit) {
  json_t *list = json_array();
  pthread_mutex_lock(&t->mu);
  size_t total = t->njobs;
  for (size_t i = offset; list && i < total && i - offset < limit; i++) {
    json_t *d = t->jobs[i].doc;
    /* the summary fields; the full document is one GET away */
    json_t *s = json_object();
    const char *keys[] = {"id",      "state",   "trigger",  "sync",
                          "created", "started", "finished", "counters"};
    for (size_t k = 0; s && k < sizeof keys / sizeof *keys; k++) {
      json_t *v = json_object_get(d, keys[k]);
      if (v)
        json_object_set_new(s, keys[k], json_deep_copy(v));
    }
    json_array_append_new(list, s);
  }
  pthread_mutex_unlock(&t->mu);
  if (!list)
    return NULL;
  size_t n = json_array_size(list);
  return json_pack(
      "{s:o, s:I, s:I, s:o}", "jobs", list, "total", (json_int_t)total,
      "offset", (json_int_t)offset, "next_offset",
      offset + n < total ? json_integer((json_int_t)offset + (json_int_t)n)
                         : json_null());
}

size_t fl_jobs_queue_depth(fl_jobs *t) {
  pthread_mutex_lock(&t->mu);
  size_t n = queued_jobs(t);
  pthread_mutex_unlock(&t->mu);
  return n;
}

void fl_jobs_count_states(fl_jobs *t, const char *const *states, size_t n,
                          size_t *counts) {
  memset(counts, 0, n * sizeof *counts);
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->njobs; i++) {
    const char *s = state_of(&t->jobs[i]);
    for (size_t k = 0; s && k < n; k++)
      if (strcmp(s, states[k]) == 0)
        counts[k]++;
  }
  pthread_mutex_unlock(&t->mu);
}

int fl_jobs_next(fl_jobs *t, int timeout_ms, fl_jobs_msg *out) {
  pthread_mutex_lock(&t->mu);
  if (t->count == 0 && timeout_ms > 0 && !t->woken) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    while (t->count == 0 && !t->woken &&
           pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT) {
    }
  }
  t->woken = 0;
  int got = 0;
  if (t->count > 0) {
    *out = t->queue[t->head];
    t->head = (t->head + 1) % t->qcap;
    t->count--;
    got = 1;
  }
  pthread_mutex_unlock(&t->mu);
  return got;
}

int fl_jobs_update(fl_jobs *t, const char *id, json_t *doc) {
  if (!json_is_object(doc) || strlen(id) > FL_JOBS_ID_MAX)
    return -1;
  json_t *copy = json_deep_copy(doc); /* nobody else holds this version */
  if (!copy || json_object_set_new(copy, "id", json_string(id)) != 0) {
    json_decref(copy);
    return -1;
  }
  pthread_mutex_lock(&t->mu);
  job *j = find(t, id);
  int rc = 0;
  if (j) {
    json_t *old = j->doc;
    j->doc = copy;
    copy = old;
  } else if (append(t, id, copy) == 0) {
    copy = NULL;
  } else {
    rc = -1;
  }
  trim(t);
  pthread_mutex_unlock(&t->mu);
  json_decref(copy);
  return rc;
}

void fl_jobs_remove(fl_jobs *t, const char *id) {
  pthread_mutex_lock(&t->mu);
  job *j = find(t, id);
  if (j) {
    json_decref(j->doc);
    size_t i = (size_t)(j - t->jobs);
    memmove(j, j + 1, (t->njobs - i - 1) * sizeof *j);
    t->njobs--;
  }
  pthread_mutex_unlock(&t->mu);
}

void fl_jobs_wake(fl_jobs *t) {
  pthread_mutex_lock(&t->mu);
  t->woken = 1;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
}
