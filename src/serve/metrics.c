/*
 * metrics.c - metric families and the exposition (see metrics.h).
 */
#include "serve/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum kind { COUNTER, GAUGE, HISTOGRAM } kind;

typedef struct family {
  const char *name;
  kind kind;
  const char *help;
  const char *labels[FL_METRICS_MAX_LABELS + 1];
} family;

static const family FAMILIES[] = {
    {"freightliner_build_info",
     GAUGE,
     "Build information (always 1).",
     {"version", NULL}},
    {"freightliner_images_replicated_total",
     COUNTER,
     "Images copied to their destination.",
     {"sync", NULL}},
    {"freightliner_images_up_to_date_total",
     COUNTER,
     "Images found already present at their destination.",
     {"sync", NULL}},
    {"freightliner_images_failed_total",
     COUNTER,
     "Images that could not be copied.",
     {"sync", NULL}},
    {"freightliner_bytes_total",
     COUNTER,
     "Bytes of blobs transferred.",
     {"sync", NULL}},
    {"freightliner_blobs_copied_total",
     COUNTER,
     "Blobs copied.",
     {"sync", NULL}},
    {"freightliner_blobs_skipped_total",
     COUNTER,
     "Blobs already present at the destination.",
     {"sync", NULL}},
    {"freightliner_blobs_mounted_total",
     COUNTER,
     "Blobs mounted from another repository.",
     {"sync", NULL}},
    {"freightliner_image_failures_total",
     COUNTER,
     "Images that could not be copied, by error code.",
     {"sync", "code"}},
    {"freightliner_retries_total",
     COUNTER,
     "Requests and blob copies tried again.",
     {"sync", NULL}},
    {"freightliner_runs_total",
     COUNTER,
     "Jobs run to their end, by outcome.",
     {"sync", "outcome"}},
    {"freightliner_runs_skipped_overlap_total",
     COUNTER,
     "Scheduled runs skipped because the previous run was still going.",
     {"sync", NULL}},
    {"freightliner_run_duration_seconds",
     HISTOGRAM,
     "Duration of jobs.",
     {"sync", NULL}},
    {"freightliner_last_success_timestamp_seconds",
     GAUGE,
     "Unix time of the last run of a sync entry with no failure.",
     {"sync", NULL}},
    {"freightliner_job_queue_depth", GAUGE, "Jobs waiting to run.", {NULL}},
    {"freightliner_jobs",
     GAUGE,
     "Jobs in the job table, by state.",
     {"state", NULL}},
    {"freightliner_auth_failures_total",
     COUNTER,
     "Requests refused for a missing or wrong API key.",
     {NULL}},
    {"freightliner_auth_lockouts_total",
     COUNTER,
     "Client addresses locked out after repeated failures.",
     {NULL}},
    {"freightliner_http_requests_total",
     COUNTER,
     "HTTP requests answered, by status code.",
     {"code", NULL}},
    {"freightliner_webhook_deliveries_total",
     COUNTER,
     "Webhook deliveries, by outcome (delivered, retried, failed, dropped).",
     {"outcome", NULL}},
    {"freightliner_config_reloads_total",
     COUNTER,
     "Configuration reloads, by outcome.",
     {"outcome", NULL}},
    {NULL, 0, NULL, {NULL}}};

static const double BUCKETS[] = {0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600};
#define NBUCKETS (sizeof BUCKETS / sizeof *BUCKETS)

typedef struct series {
  const family *f;
  char *labels; /* rendered: k="v",k2="v2" (or "") */
  double value; /* counter/gauge; histogram: sum */
  unsigned long long count;
  unsigned long long buckets[NBUCKETS];
} series;

struct fl_metrics {
  pthread_mutex_t mu;
  series *s;
  size_t n, cap;
};

static const family *family_of(const char *name) {
  for (const family *f = FAMILIES; f->name; f++)
    if (strcmp(f->name, name) == 0)
      return f;
  return NULL;
}

int fl_metrics_known(const char *name) { return family_of(name) != NULL; }

const char *const *fl_metrics_labels(const char *name) {
  const family *f = family_of(name);
  return f ? f->labels : NULL;
}

fl_metrics *fl_metrics_new(void) {
  fl_metrics *m = calloc(1, sizeof *m);
  if (m)
    pthread_mutex_init(&m->mu, NULL);
  return m;
}

void fl_metrics_free(fl_metrics *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++)
    free(m->s[i].labels);
  free(m->s);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

/* A growing string. */
typedef struct buf {
  char *p;
  size_t len, cap;
  int failed;
} buf;

static void put(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...) {
  if (b->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

/* Label values escaped as the text format wants (\\, \", \n). */
static void put_escaped(buf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\')
      put(b, "\\\\");
    else if (*v == '"')
      put(b, "\\\"");
    else if (*v == '\n')
      put(b, "\\n");
    else
      put(b, "%c", *v);
  }
}

static char *render_labels(const family *f, const char *const *values) {
  buf b = {0};
  put(&b, "%s", "");
  for (int i = 0; f->labels[i]; i++) {
    put(&b, "%s%s=\"", i ? "," : "", f->labels[i]);
    put_escaped(&b, values && values[i] ? values[i] : "");
    put(&b, "\"");
  }
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* The series, created at zero. Mutex held. */
static series *get(fl_metrics *m, const family *f, const char *const *values) {
  char *labels = render_labels(f, values);
  if (!labels)
    return NULL;
  for (size_t i = 0; i < m->n; i++)
    if (m->s[i].f == f && strcmp(m->s[i].labels, labels) == 0) {
      free(labels);
      return &m->s[i];
    }
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 32;
    series *s = realloc(m->s, cap * sizeof *s);
    if (!s) {
      free(labels);
      return NULL;
    }
    m->s = s;
    m->cap = cap;
  }
  series *s = &m->s[m->n++];
  memset(s, 0, sizeof *s);
  s->f = f;
  s->labels = labels;
  return s;
}

static int update(fl_metrics *m, const char *name, const char *const *values,
                  double v, int op) {
  const family *f = family_of(name);
  if (!f || !isfinite(v))
    return -1;
  if ((op == 0 && f->kind == HISTOGRAM) ||
      (op == 0 && f->kind == COUNTER && v < 0) ||
      (op == 1 && f->kind != GAUGE) || (op == 2 && f->kind != HISTOGRAM))
    return -1;
  pthread_mutex_lock(&m->mu);
  series *s = get(m, f, values);
  if (s) {
    if (op == 0)
      s->value += v;
    else if (op == 1)
      s->value = v;
    else {
      s->value += v;
      s->count++;
      for (size_t i = 0; i < NBUCKETS; i++)
        if (v <= BUCKETS[i])
          s->buckets[i]++;
    }
  }
  pthread_mutex_unlock(&m->mu);
  return s ? 0 : -1;
}

int fl_metrics_add(fl_metrics *m, const char *name, const char *const *values,
                   double delta) {
  return update(m, name, values, delta, 0);
}

int fl_metrics_set(fl_metrics *m, const char *name, const char *const *values,
                   double v) {
  return update(m, name, values, v, 1);
}

int fl_metrics_observe(fl_metrics *m, const char *name,
                       const char *const *values, double v) {
  return update(m, name, values, v, 2);
}

static void put_number(buf *b, double v) {
  if (v == floor(v) && fabs(v) < 1e15)
    put(b, "%.0f", v);
  else
    put(b, "%.15g", v);
}

char *fl_metrics_render(fl_metrics *m, size_t *len) {
  buf b = {0};
  pthread_mutex_lock(&m->mu);
  for (const family *f = FAMILIES; f->name; f++) {
    const char *type = f->kind == COUNTER ? "counter"
                       : f->kind == GAUGE ? "gauge"
                                          : "histogram";
    put(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type);
    for (size_t i = 0; i < m->n; i++) {
      series *s = &m->s[i];
      if (s->f != f)
        continue;
      const char *sep = s->labels[0] ? "," : "";
      if (f->kind != HISTOGRAM) {
        put(&b, "%s%s%s%s ", f->name, s->labels[0] ? "{" : "", s->labels,
            s->labels[0] ? "}" : "");
        put_number(&b, s->value);
        put(&b, "\n");
        continue;
      }
      for (size_t k = 0; k < NBUCKETS; k++) {
        put(&b, "%s_bucket{%s%sle=\"", f->name, s->labels, sep);
        put_number(&b, BUCKETS[k]);
        put(&b, "\"} %llu\n", s->buckets[k]);
      }
      put(&b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep,
          s->count);
      put(&b, "%s_sum%s%s%s ", f->name, s->labels[0] ? "{" : "", s->labels,
          s->labels[0] ? "}" : "");
      put_number(&b, s->value);
      put(&b, "\n%s_count%s%s%s %llu\n", f->name, s->labels[0] ? "{" : "",
          s->labels, s->labels[0] ? "}" : "", s->count);
    }
  }
  pthread_mutex_unlock(&m->mu);
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}
