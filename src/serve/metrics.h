/*
 * metrics.h - the server's metrics and their Prometheus text exposition.
 *
 * The families are declared once, in metrics.c (name, type, help, label
 * names); a series is a family plus label values. The Lua thread publishes
 * run results (fl_metrics_add / _set / _observe, through core.serve), HTTP
 * threads count requests and authentication failures, and fl_metrics_render
 * writes the exposition (text format 0.0.4) for /metrics. Label values are
 * escaped when rendered. Everything is guarded by one mutex.
 */
#ifndef FL_SERVE_METRICS_H
#define FL_SERVE_METRICS_H

#include <stddef.h>

typedef struct fl_metrics fl_metrics;

#define FL_METRICS_MAX_LABELS 2

fl_metrics *fl_metrics_new(void);
void fl_metrics_free(fl_metrics *m);

/* values[i] is the value of the family's i-th label (NULL entries for a
 * family without labels). -1: unknown family, wrong kind or out of
 * memory. */
int fl_metrics_add(fl_metrics *m, const char *name, const char *const *values,
                   double delta); /* counters (delta >= 0) and gauges */
int fl_metrics_set(fl_metrics *m, const char *name, const char *const *values,
                   double v); /* gauges */
int fl_metrics_observe(fl_metrics *m, const char *name,
                       const char *const *values, double v); /* histograms */
/* 1 if name is a declared family. */
int fl_metrics_known(const char *name);
/* The label names of family name (NULL-terminated), or NULL. */
const char *const *fl_metrics_labels(const char *name);

/* The exposition (malloc'd, NUL-terminated). */
char *fl_metrics_render(fl_metrics *m, size_t *len);

#endif
