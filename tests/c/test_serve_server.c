/*
 * test_serve_server.c - the HTTP listener in one process (src/serve/
 * server.c): client threads (libcurl) create jobs, read them and scrape the
 * metrics while this thread plays the Lua thread (takes the queue, replaces
 * documents); every document read is whole, every job created is seen once,
 * the lockout holds under concurrency. Run under `make tsan` it is the race
 * check of the server's locking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>
#include <time.h>

#include "serve/server.h"

#define KEY "test-key-0123456789abcdef"
#define CLIENTS 4
#define JOBS_EACH 25

typedef struct buf {
  char data[65536];
  size_t len;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  buf *b = ud;
  size_t len = size * n;
  if (b->len + len >= sizeof b->data)
    len = sizeof b->data - b->len - 1;
  memcpy(b->data + b->len, p, len);
  b->len += len;
  b->data[b->len] = '\0';
  return size * n;
}

/* One request; returns the status, body in *out. */
static long request(int port, const char *method, const char *path,
                    const char *body, const char *key, buf *out) {
  CURL *c = curl_easy_init();
  char url[256], auth[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  struct curl_slist *h = NULL;
  if (key) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    h = curl_slist_append(h, auth);
  }
  out->len = 0;
  out->data[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  if (body)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return status;
}

typedef struct client {
  int port;
  int created, whole, errors;
  char ids[JOBS_EACH][64];
} client;

static void *run_client(void *arg) {
  client *cl = arg;
  buf *b = malloc(sizeof *b);
  for (int i = 0; i < JOBS_EACH; i++) {
    long st = request(cl->port, "POST", "/api/v1/jobs", "{\"sync\": \"app\"}",
                      KEY, b);
    json_t *doc = json_loads(b->data, 0, NULL);
    if (st == 202 && doc) {
      snprintf(cl->ids[cl->created++], 64, "%s",
               json_string_value(json_object_get(doc, "id")));
    } else if (st != 503) {
      cl->errors++;
    }
    json_decref(doc);
    if (cl->created > 0) {
      char path[128];
      snprintf(path, sizeof path, "/api/v1/jobs/%s", cl->ids[cl->created - 1]);
      st = request(cl->port, "GET", path, NULL, KEY, b);
      doc = json_loads(b->data, 0, NULL);
      /* a document is the creator's or the Lua thread's, never a mix */
      json_t *step = json_object_get(doc, "step");
      json_t *copy = json_object_get(doc, "step_copy");
      if (st == 200 && doc &&
          ((!step && !copy) ||
           (json_integer_value(step) == json_integer_value(copy) && step)))
        cl->whole++;
      else
        cl->errors++;
      json_decref(doc);
    }
    if (request(cl->port, "GET", "/metrics", NULL, NULL, b) != 200)
      cl->errors++;
  }
  free(b);
  return NULL;
}

static void test_concurrent(void **state) {
  (void)state;
  fl_server_options o = {0};
  o.listen = "127.0.0.1:0";
  o.max_queued = 1000;
  o.max_kept = 1000;
  o.timeout_s = 5;
  o.version = "test";
  fl_error err = {0};
  fl_server *s = fl_server_start(&o, &err);
  if (!s)
    fail_msg("start: %s", err.msg);
  const char *keys[] = {KEY};
  size_t lens[] = {strlen(KEY)};
  fl_auth_set_keys(fl_server_auth(s), keys, lens, 1);
  json_t *syncs = json_pack("[{s:s}]", "name", "app");
  fl_server_set_syncs(s, syncs);
  json_decref(syncs);
  fl_server_set_ready(s, 1, "");
  int port = fl_server_port(s, 0);
  assert_true(port > 0);

  client clients[CLIENTS];
  pthread_t threads[CLIENTS];
  memset(clients, 0, sizeof clients);
  for (int i = 0; i < CLIENTS; i++) {
    clients[i].port = port;
    pthread_create(&threads[i], NULL, run_client, &clients[i]);
  }
  /* the "Lua thread": take every run message, update its document often */
  int runs = 0, step = 0;
  while (runs < CLIENTS * JOBS_EACH) {
    fl_jobs_msg m;
    if (!fl_jobs_next(fl_server_jobs(s), 2000, &m))
      break;
    if (m.kind != FL_JOBS_RUN)
      continue;
    runs++;
    for (int k = 0; k < 3; k++) {
      step++;
      json_t *doc =
          json_pack("{s:s, s:i, s:i}", "state", k < 2 ? "running" : "succeeded",
                    "step", step, "step_copy", step);
      assert_int_equal(fl_jobs_update(fl_server_jobs(s), m.id, doc), 0);
      json_decref(doc);
    }
    const char *labels[] = {"app", NULL};
    fl_metrics_add(fl_server_metrics(s), "freightliner_images_replicated_total",
                   labels, 1);
  }
  int created = 0, whole = 0, errors = 0;
  for (int i = 0; i < CLIENTS; i++) {
    pthread_join(threads[i], NULL);
    created += clients[i].created;
    whole += clients[i].whole;
    errors += clients[i].errors;
  }
  assert_int_equal(errors, 0);
  assert_int_equal(created, CLIENTS * JOBS_EACH);
  assert_int_equal(runs, created);
  assert_int_equal(whole, created);
  buf *b = malloc(sizeof *b);
  assert_int_equal(request(port, "GET", "/metrics", NULL, NULL, b), 200);
  assert_non_null(strstr(b->data,
                         "freightliner_images_replicated_total{sync=\"app\"} "
                         "100\n"));
  assert_int_equal(request(port, "GET", "/api/v1/jobs", NULL, "wrong", b), 401);
  free(b);
  fl_server_free(s);
}

/* The webhook signature is RFC 4231's HMAC-SHA256 (test case 2); a
 * delivery that keeps failing is retried, and stopping the notifier ends
 * its backoff at once. */
static void test_notify(void **state) {
  (void)state;
  char sig[80];
  const char *data = "what do ya want for nothing?";
  fl_notify_sign("Jefe", data, strlen(data), sig);
  assert_string_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f08"
                           "9d2739839dec58b964ec3843");
  fl_metrics *m = fl_metrics_new();
  fl_notify *n = fl_notify_new(1, m);
  /* port 1 on loopback: refused at once */
  assert_int_equal(fl_notify_post(n, "http://127.0.0.1:1/hook", "{}", "k"), 0);
  int full = 0;
  for (int i = 0; i < 5; i++)
    full |= fl_notify_post(n, "http://127.0.0.1:1/hook", "{}", NULL) != 0;
  assert_true(full); /* the queue holds one */
  struct timespec ts = {0, 300 * 1000000L};
  nanosleep(&ts, NULL);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  fl_notify_free(n); /* within the backoff: returns at once */
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_true(t1.tv_sec - t0.tv_sec < 2);
  size_t len;
  char *text = fl_metrics_render(m, &len);
  assert_non_null(strstr(text, "freightliner_webhook_deliveries_total{outcome="
                               "\"retried\"}"));
  assert_non_null(strstr(text, "freightliner_webhook_deliveries_total{outcome="
                               "\"dropped\"}"));
  free(text);
  fl_metrics_free(m);
}

/* Reachability: a listening port answers, port 1 does not; a new target
 * list starts a new verdict at once. */
static void test_probe(void **state) {
  (void)state;
  fl_server_options o = {0};
  o.listen = "127.0.0.1:0";
  fl_error err = {0};
  fl_server *s = fl_server_start(&o, &err);
  assert_non_null(s);
  char up[64], out[256];
  snprintf(up, sizeof up, "127.0.0.1:%d", fl_server_port(s, 0));
  fl_probe *p = fl_probe_new(1);
  const char *both[] = {up, "127.0.0.1:1"};
  assert_int_equal(fl_probe_set_targets(p, both, 2), 0);
  int ok = 1;
  for (int i = 0; i < 100 && ok; i++) {
    ok = fl_probe_ok(p, out, sizeof out);
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_false(ok);
  assert_string_equal(out, "127.0.0.1:1");
  const char *one[] = {up};
  assert_int_equal(fl_probe_set_targets(p, one, 1), 0);
  assert_true(fl_probe_ok(p, out, sizeof out));
  struct timespec ts = {1, 200 * 1000000L};
  nanosleep(&ts, NULL);
  assert_true(fl_probe_ok(p, out, sizeof out));
  fl_probe_free(p);
  fl_server_free(s);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrent),
      cmocka_unit_test(test_notify),
      cmocka_unit_test(test_probe),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
