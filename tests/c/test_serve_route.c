/*
 * test_serve_route.c - the router and the job-body check (src/serve/
 * route.c), the job table and queue (jobs.c) and the metrics exposition
 * (metrics.c): every route and method, path parameters outside their
 * alphabet, bodies of every shape, bounded queues, whole-document updates,
 * trimming, label escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve/jobs.h"
#include "serve/metrics.h"
#include "serve/route.h"

static void test_routes(void **state) {
  (void)state;
  static const struct {
    const char *method, *path;
    fl_route_id want;
    const char *param;
  } cases[] = {
      {"GET", "/healthz", FL_ROUTE_HEALTHZ, ""},
      {"HEAD", "/healthz", FL_ROUTE_HEALTHZ, ""},
      {"GET", "/readyz", FL_ROUTE_READYZ, ""},
      {"GET", "/metrics", FL_ROUTE_METRICS, ""},
      {"POST", "/metrics", FL_ROUTE_METHOD, ""},
      {"GET", "/api/v1/jobs", FL_ROUTE_JOBS_LIST, ""},
      {"POST", "/api/v1/jobs", FL_ROUTE_JOBS_CREATE, ""},
      {"PUT", "/api/v1/jobs", FL_ROUTE_METHOD, ""},
      {"OPTIONS", "/api/v1/jobs", FL_ROUTE_PREFLIGHT, ""},
      {"GET", "/api/v1/jobs/20261129-abc", FL_ROUTE_JOB_GET, "20261129-abc"},
      {"DELETE", "/api/v1/jobs/j1", FL_ROUTE_JOB_CANCEL, "j1"},
      {"POST", "/api/v1/jobs/j1", FL_ROUTE_METHOD, "j1"},
      {"GET", "/api/v1/jobs/", FL_ROUTE_NOT_FOUND, ""},
      {"GET", "/api/v1/jobs/a/b", FL_ROUTE_NOT_FOUND, ""},
      {"GET", "/api/v1/jobs/..", FL_ROUTE_BAD_PARAM, ""},
      {"GET", "/api/v1/jobs/a%2fb", FL_ROUTE_BAD_PARAM, ""},
      {"GET", "/api/v1/syncs", FL_ROUTE_SYNCS, ""},
      {"POST", "/api/v1/sync/mirror-1/run", FL_ROUTE_SYNC_RUN, "mirror-1"},
      {"GET", "/api/v1/sync/mirror-1/run", FL_ROUTE_METHOD, "mirror-1"},
      {"POST", "/api/v1/sync//run", FL_ROUTE_NOT_FOUND, ""},
      {"POST", "/api/v1/sync/a b/run", FL_ROUTE_BAD_PARAM, ""},
      {"POST", "/api/v1/reload", FL_ROUTE_RELOAD, ""},
      {"GET", "/api/v1/reload", FL_ROUTE_METHOD, ""},
      {"GET", "/", FL_ROUTE_NOT_FOUND, ""},
      {"GET", "/healthz/", FL_ROUTE_NOT_FOUND, ""},
      {"GET", "/API/v1/jobs", FL_ROUTE_NOT_FOUND, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fl_route r;
    fl_serve_route(cases[i].method, cases[i].path, &r);
    if (r.id != cases[i].want || strcmp(r.param, cases[i].param) != 0)
      fail_msg("%s %s: route %d param '%s', want %d '%s'", cases[i].method,
               cases[i].path, r.id, r.param, cases[i].want, cases[i].param);
    assert_int_equal(r.api, strncmp(cases[i].path, "/api/", 5) == 0);
  }
  fl_route r;
  fl_serve_route("PUT", "/api/v1/jobs", &r);
  assert_string_equal(r.allow, "GET, POST");
  fl_serve_route(NULL, NULL, &r);
  assert_int_equal(r.id, FL_ROUTE_NOT_FOUND);
  char long_param[100];
  memset(long_param, 'a', sizeof long_param);
  long_param[99] = '\0';
  char path[160];
  snprintf(path, sizeof path, "/api/v1/jobs/%s", long_param);
  fl_serve_route("GET", path, &r);
  assert_int_equal(r.id, FL_ROUTE_BAD_PARAM);
}

static void test_bodies(void **state) {
  (void)state;
  static const struct {
    const char *body, *words; /* words NULL: accepted */
  } cases[] = {
      {"{\"sync\": \"nightly\"}", NULL},
      {"{\"source\": {\"registry\": \"a\", \"repository\": [\"x\", \"y\"]}, "
       "\"destination\": {\"registry\": \"b\", \"prefix\": \"m\"}, \"tags\": "
       "{\"include\": [\"v*\"]}, \"platforms\": \"linux/amd64\", "
       "\"referrers\": true}",
       NULL},
      {"", "needs a JSON body"},
      {"{", "malformed JSON"},
      {"[1]", "JSON object"},
      {"{\"sync\": \"a\", \"sync\": \"b\"}", "malformed JSON"}, /* duplicate */
      {"{\"sync\": 1}", "'sync' must be a string"},
      {"{\"sync\": \"../x\"}", "sync entry's name"},
      {"{\"sync\": \"a\", \"tags\": {}}", "not both"},
      {"{\"policy\": \"/etc/passwd\"}", "unknown field 'policy'"},
      {"{\"source\": {\"registry\": \"a\"}}", "both 'source' and"},
      {"{\"source\": {\"registry\": \"a\"}, \"destination\": {}}",
       "each need 'registry'"},
      {"{\"source\": {\"registry\": 1}, \"destination\": {\"registry\": "
       "\"b\"}}",
       "source: 'registry' must be a string"},
      {"{\"source\": {\"registry\": \"a\", \"repository\": [1]}, "
       "\"destination\": {\"registry\": \"b\"}}",
       "list of strings"},
      {"{\"source\": {\"registry\": \"a\", \"host\": \"x\"}, \"destination\": "
       "{\"registry\": \"b\"}}",
       "source: unknown field 'host'"},
      {"{\"referrers\": \"yes\"}", "true or false"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char msg[256] = "";
    json_t *doc = fl_serve_check_job(cases[i].body, strlen(cases[i].body), msg,
                                     sizeof msg);
    if (!cases[i].words) {
      if (!doc)
        fail_msg("'%s' refused: %s", cases[i].body, msg);
      json_decref(doc);
    } else if (doc || !strstr(msg, cases[i].words)) {
      fail_msg("'%s': %s, message '%s' (want '%s')", cases[i].body,
               doc ? "accepted" : "refused", msg, cases[i].words);
    }
  }
  /* a long unknown field is cut in the message, never echoed whole */
  char body[600], msg[256];
  snprintf(body, sizeof body, "{\"%0500d\": 1}", 0);
  assert_null(fl_serve_check_job(body, strlen(body), msg, sizeof msg));
  assert_true(strlen(msg) < 200);
}

static void test_jobs(void **state) {
  (void)state;
  fl_jobs *t = fl_jobs_new(2, 3);
  json_t *req = json_pack("{s:s}", "sync", "a");
  char id1[64], id2[64], id3[64];
  assert_int_equal(fl_jobs_create(t, req, "api", "r1", "127.0.0.1", id1), 0);
  assert_int_equal(fl_jobs_create(t, req, "api", "r2", "127.0.0.1", id2), 0);
  /* two queued: the third is shed */
  assert_int_equal(fl_jobs_create(t, req, "api", "r3", "127.0.0.1", id3), -1);
  assert_int_equal(fl_jobs_queue_depth(t), 2);
  fl_jobs_msg m;
  assert_int_equal(fl_jobs_next(t, 0, &m), 1);
  assert_int_equal(m.kind, FL_JOBS_RUN);
  assert_string_equal(m.id, id1);
  assert_string_equal(m.request_id, "r1");
  /* the Lua thread replaces the whole document */
  json_t *doc =
      json_pack("{s:s, s:{s:i}}", "state", "running", "progress", "images", 3);
  assert_int_equal(fl_jobs_update(t, id1, doc), 0);
  json_decref(doc);
  json_t *got = fl_jobs_get(t, id1);
  assert_string_equal(json_string_value(json_object_get(got, "state")),
                      "running");
  assert_string_equal(json_string_value(json_object_get(got, "id")), id1);
  assert_null(json_object_get(got, "trigger")); /* replaced, not merged */
  json_decref(got);
  assert_int_equal(fl_jobs_cancel(t, id1, "r4", "c"), 0);
  assert_int_equal(fl_jobs_cancel(t, "nope", "r5", "c"), 404);
  assert_int_equal(fl_jobs_next(t, 0, &m), 1); /* id2's run */
  assert_int_equal(fl_jobs_next(t, 0, &m), 1);
  assert_int_equal(m.kind, FL_JOBS_CANCEL);
  assert_int_equal(fl_jobs_next(t, 10, &m), 0); /* empty: waits, then none */
  /* finished jobs: 409 on cancel; past max_kept the oldest go */
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "done-%d", i);
    doc = json_pack("{s:s}", "state", "succeeded");
    assert_int_equal(fl_jobs_update(t, id, doc), 0);
    json_decref(doc);
  }
  assert_int_equal(fl_jobs_cancel(t, "done-4", "r", "c"), 409);
  assert_null(fl_jobs_get(t, "done-0"));
  assert_null(fl_jobs_get(t, "done-1"));
  got = fl_jobs_get(t, "done-2");
  assert_non_null(got);
  json_decref(got);
  json_t *list = fl_jobs_list(t, 1, 2);
  assert_int_equal(json_integer_value(json_object_get(list, "total")), 5);
  assert_int_equal(json_array_size(json_object_get(list, "jobs")), 2);
  assert_int_equal(json_integer_value(json_object_get(list, "next_offset")), 3);
  json_decref(list);
  doc = json_array();
  assert_int_equal(fl_jobs_update(t, "x", doc), -1); /* not an object */
  json_decref(doc);
  json_decref(req);
  fl_jobs_free(t);
}

static void test_metrics(void **state) {
  (void)state;
  fl_metrics *m = fl_metrics_new();
  const char *app[] = {"app \"1\"\n\\", NULL};
  assert_int_equal(
      fl_metrics_add(m, "freightliner_images_replicated_total", app, 3), 0);
  assert_int_equal(
      fl_metrics_add(m, "freightliner_images_replicated_total", app, 2), 0);
  assert_int_equal(
      fl_metrics_add(m, "freightliner_images_replicated_total", app, -1), -1);
  assert_int_equal(fl_metrics_add(m, "freightliner_nope", app, 1), -1);
  assert_int_equal(
      fl_metrics_set(m, "freightliner_images_replicated_total", app, 1), -1);
  assert_int_equal(
      fl_metrics_observe(m, "freightliner_run_duration_seconds", app, 0.3), 0);
  const char *two[] = {"a", "succeeded", NULL};
  assert_int_equal(fl_metrics_add(m, "freightliner_runs_total", two, 1), 0);
  size_t len;
  char *text = fl_metrics_render(m, &len);
  assert_non_null(text);
  assert_non_null(strstr(text, "# TYPE freightliner_images_replicated_total "
                               "counter\n"));
  assert_non_null(strstr(text, "freightliner_images_replicated_total{sync="
                               "\"app \\\"1\\\"\\n\\\\\"} 5\n"));
  assert_non_null(strstr(text, "freightliner_run_duration_seconds_bucket{sync="
                               "\"app \\\"1\\\"\\n\\\\\",le=\"0.5\"} 1\n"));
  assert_non_null(strstr(text, "le=\"0.1\"} 0\n"));
  assert_non_null(strstr(text, "_count{sync=\"app \\\"1\\\"\\n\\\\\"} 1\n"));
  assert_non_null(strstr(
      text, "freightliner_runs_total{sync=\"a\",outcome=\"succeeded\"} 1"));
  assert_int_equal(strlen(text), len);
  free(text);
  fl_metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routes),
      cmocka_unit_test(test_bodies),
      cmocka_unit_test(test_jobs),
      cmocka_unit_test(test_metrics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
