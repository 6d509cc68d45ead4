/*
 * test_engine.c - the transfer engine under load, between OCI layouts.
 *
 * Real endpoints on disk (no network): images with hundreds of small blobs,
 * many jobs at once on many workers, shared layers, re-runs, a corrupted
 * source blob, cancellation mid-way, cancelling one job among many,
 * endpoints released while their jobs run, and the thread bound with 10,000
 * jobs submitted. Meant to run clean under `make tsan` and `make sanitize`
 * as well as in the normal build.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "engine/engine.h"
#include "engine/pipe.h"
#include "registry/oci_layout.h"

typedef struct fixture {
  char dir[64];
  fl_endpoint *src, *dst;
} fixture;

static long long mem_read(void *ud, void *buf, size_t len, fl_error *err) {
  (void)err;
  const char **p = ud;
  size_t left = strlen(*p);
  size_t n = left < len ? left : len;
  memcpy(buf, *p, n);
  *p += n;
  return (long long)n;
}

/* Put a blob with given content; returns its digest in out. */
static void put_blob(fl_endpoint *ep, const char *content, char *out) {
  fl_error err;
  assert_int_equal(fl_digest_buffer(FL_SHA256, content, strlen(content), out),
                   FL_OK);
  const char *cursor = content;
  fl_source src = {mem_read, NULL, &cursor, NULL};
  assert_int_equal(
      ep->ops->blob_put(ep, "image", out, strlen(content), &src, &err), FL_OK);
}

/* An image with `layers` small layers, the first shared by every image. */
static void make_image(fl_endpoint *ep, const char *tag, int layers) {
  char cfg_digest[FL_DIGEST_STR_MAX];
  char cfg[128];
  snprintf(cfg, sizeof cfg,
           "{\"architecture\":\"amd64\",\"os\":\"linux\",\"tag\":\"%s\"}", tag);
  put_blob(ep, cfg, cfg_digest);
  size_t cap = 512 + (size_t)layers * 160;
  char *m = malloc(cap);
  assert_non_null(m);
  size_t at = (size_t)snprintf(
      m, cap,
      "{\"schemaVersion\":2,\"mediaType\":\"" FL_MT_OCI_MANIFEST "\","
      "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
      "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
      cfg_digest, strlen(cfg));
  for (int i = 0; i < layers; i++) {
    char content[96], digest[FL_DIGEST_STR_MAX];
    if (i == 0)
      snprintf(content, sizeof content, "shared base layer");
    else
      snprintf(content, sizeof content, "layer %d of %s: %0*d", i, tag,
               20 + i % 40, i);
    put_blob(ep, content, digest);
    at += (size_t)snprintf(m + at, cap - at,
                           "%s{\"mediaType\":\"application/"
                           "vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
                           "\"size\":%zu}",
                           i ? "," : "", digest, strlen(content));
  }
  snprintf(m + at, cap - at, "]}");
  fl_error err;
  assert_int_equal(ep->ops->manifest_put(ep, "image", tag, m, strlen(m),
                                         FL_MT_OCI_MANIFEST, &err),
                   FL_OK);
  free(m);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/fl-engine-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char path[128];
  fl_error err;
  snprintf(path, sizeof path, "%s/src", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 1, &f->src, &err), FL_OK);
  snprintf(path, sizeof path, "%s/dst", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 1, &f->dst, &err), FL_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  fl_endpoint_free(f->src);
  fl_endpoint_free(f->dst);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void submit_all(fl_engine *e, fixture *f, int n, const fl_copy_opts *o) {
  for (int i = 0; i < n; i++) {
    char tag[32];
    uint64_t id;
    fl_error err;
    snprintf(tag, sizeof tag, "t%d", i);
    assert_int_equal(fl_engine_submit_copy(e, f->src, "image", tag, f->dst,
                                           "image", tag, o, &id, &err),
                     FL_OK);
  }
}

/* A whole file in memory (test data: small), or NULL. */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  *len = fread(buf, 1, (size_t)(n > 0 ? n : 0), fp);
  fclose(fp);
  return buf;
}

/* The independent judge of a copy between layouts, from the files alone:
 * every blob of src/ is in dst/ with the same bytes, and every blob file
 * of dst/ hashes (OpenSSL directly, not the engine's digests) to its
 * name. Returns how many blob files dst/ holds. */
static int check_layouts(const fixture *f) {
  char sdir[160], ddir[160], path[512];
  snprintf(sdir, sizeof sdir, "%s/src/blobs/sha256", f->dir);
  snprintf(ddir, sizeof ddir, "%s/dst/blobs/sha256", f->dir);
  DIR *d = opendir(sdir);
  assert_non_null(d);
  for (struct dirent *de; (de = readdir(d));) {
    if (de->d_name[0] == '.')
      continue;
    size_t a, b;
    snprintf(path, sizeof path, "%s/%s", sdir, de->d_name);
    unsigned char *x = slurp(path, &a);
    snprintf(path, sizeof path, "%s/%s", ddir, de->d_name);
    unsigned char *y = slurp(path, &b);
    if (!y)
      fail_msg("blob %s of the source is missing at the destination",
               de->d_name);
    assert_true(a == b && memcmp(x, y, a) == 0);
    free(x);
    free(y);
  }
  closedir(d);
  int n = 0;
  d = opendir(ddir);
  assert_non_null(d);
  for (struct dirent *de; (de = readdir(d));) {
    if (de->d_name[0] == '.')
      continue;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", ddir, de->d_name);
    unsigned char *x = slurp(path, &len), md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(x, len, md, &mdlen, EVP_sha256(), NULL), 1);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++)
      snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (strcmp(hex, de->d_name) != 0)
      fail_msg("destination blob %s hashes to %s", de->d_name, hex);
    free(x);
    n++;
  }
  closedir(d);
  return n;
}

/* 12 images x 40 layers, 16 workers, all at once; then a no-op re-run. */
static void test_stress_copy_and_rerun(void **state) {
  fixture *f = *state;
  const int images = 12, layers = 40;
  for (int i = 0; i < images; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "t%d", i);
    make_image(f->src, tag, layers);
  }
  fl_engine_config cfg = {.blob_workers = 16, .pipe_capacity = 4096};
  fl_engine *e;
  fl_error err;
  assert_int_equal(fl_engine_new(&cfg, &e, &err), FL_OK);
  submit_all(e, f, images, NULL);
  fl_copy_result r;
  int done = 0;
  while (fl_engine_pending(e) > 0) {
    if (fl_engine_wait(e, 1000, &r)) {
      if (r.code != FL_OK)
        fail_msg("copy failed: %s", r.err.msg);
      assert_string_equal(r.digest, r.src_digest);
      done++;
    }
  }
  assert_int_equal(done, images);
  fl_counters c;
  fl_engine_counters(e, &c);
  /* configs, the unique layers, and the shared base layer only once */
  const uint64_t unique =
      (uint64_t)images + (uint64_t)images * (layers - 1) + 1;
  assert_int_equal(c.blobs_copied, unique);
  /* every other image found the base placed (or parked on its transfer) */
  assert_int_equal(c.blobs_skipped, (uint64_t)images - 1);
  assert_int_equal(c.blobs_mounted, 0);
  assert_int_equal(c.images_replicated, (uint64_t)images);
  assert_int_equal(c.manifests_pushed, (uint64_t)images);
  /* read back from disk: the blobs and the manifests, nothing else */
  assert_int_equal(check_layouts(f), (int)unique + images);

  submit_all(e, f, images, NULL);
  while (fl_engine_pending(e) > 0)
    if (fl_engine_wait(e, 1000, &r)) {
      assert_int_equal(r.code, FL_OK);
      assert_true(r.up_to_date);
      assert_int_equal(r.blobs_copied, 0);
    }
  fl_engine_counters(e, &c);
  assert_int_equal(c.images_up_to_date, (uint64_t)images);
  assert_int_equal(c.blobs_copied, unique);
  fl_engine_free(e);
}

/* One image to three destination repositories, one after the other: the
 * engine remembers where it placed each blob, so the second and third
 * copies mount every blob, and a copy to a repository it already filled
 * skips them all. */
static void test_known_blobs_mount_across_repos(void **state) {
  fixture *f = *state;
  const int layers = 5;
  make_image(f->src, "v1", layers);
  fl_engine_config cfg = {.blob_workers = 4};
  fl_engine *e;
  fl_error err;
  assert_int_equal(fl_engine_new(&cfg, &e, &err), FL_OK);
  const char *repos[] = {"a", "b", "c", "a"};
  for (int i = 0; i < 4; i++) {
    uint64_t id;
    fl_copy_opts o = {.force = 1};
    assert_int_equal(fl_engine_submit_copy(e, f->src, "image", "v1", f->dst,
                                           repos[i], "v1", &o, &id, &err),
                     FL_OK);
    fl_copy_result r;
    assert_int_equal(fl_engine_wait(e, -1, &r), id);
    if (r.code != FL_OK)
      fail_msg("copy to %s failed: %s", repos[i], r.err.msg);
    const uint64_t blobs = (uint64_t)layers + 1; /* and the config */
    if (i == 0)
      assert_int_equal(r.blobs_copied, blobs);
    else if (i < 3)
      assert_int_equal(r.blobs_mounted, blobs);
    else
      assert_int_equal(r.blobs_skipped, blobs);
  }
  fl_engine_free(e);
}

/* A corrupted source blob: the copy fails with DIGEST_MISMATCH and the
 * destination gets neither the blob nor the tag. */
static void test_corrupt_source_commits_nothing(void **state) {
  fixture *f = *state;
  make_image(f->src, "bad", 3);
  fl_manifest m;
  fl_error err;
  assert_int_equal(f->src->ops->manifest_get(f->src, "image", "bad", &m, &err),
                   FL_OK);
  /* corrupt the last layer's file in place */
  const char *last = strstr(m.data, "\"layers\"");
  assert_non_null(last);
  const char *d = NULL;
  for (const char *p = strstr(last, "sha256:"); p; p = strstr(p + 1, "sha256:"))
    d = p;
  char digest[FL_DIGEST_STR_MAX];
  snprintf(digest, 72, "%s", d);
  char path[256];
  snprintf(path, sizeof path, "%s/src/blobs/sha256/%s", f->dir, digest + 7);
  FILE *fp = fopen(path, "r+b");
  assert_non_null(fp);
  fputc('X', fp);
  fclose(fp);
  fl_manifest_clear(&m);

  fl_engine *e;
  assert_int_equal(fl_engine_new(NULL, &e, &err), FL_OK);
  uint64_t id;
  assert_int_equal(fl_engine_submit_copy(e, f->src, "image", "bad", f->dst,
                                         "image", "bad", NULL, &id, &err),
                   FL_OK);
  fl_copy_result r;
  assert_int_equal(fl_engine_wait(e, -1, &r), id);
  assert_int_equal(r.code, FL_EDIGEST_MISMATCH);
  assert_non_null(strstr(r.err.msg, digest));
  uint64_t size;
  assert_int_equal(
      f->dst->ops->blob_exists(f->dst, "image", digest, &size, &err),
      FL_ENOT_FOUND);
  fl_descriptor desc;
  assert_int_equal(
      f->dst->ops->manifest_head(f->dst, "image", "bad", &desc, &err),
      FL_ENOT_FOUND);
  fl_engine_free(e);
}

/* Cancel while many jobs are in flight: every job ends (CANCELLED or done),
 * nothing hangs, and cancel/free are idempotent. */
static void test_cancel_mid_way(void **state) {
  fixture *f = *state;
  const int images = 10;
  for (int i = 0; i < images; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "t%d", i);
    make_image(f->src, tag, 30);
  }
  fl_engine_config cfg = {.blob_workers = 4, .pipe_capacity = 1024};
  fl_engine *e;
  fl_error err;
  assert_int_equal(fl_engine_new(&cfg, &e, &err), FL_OK);
  submit_all(e, f, images, NULL);
  fl_copy_result r;
  fl_engine_wait(e, 5, &r);
  fl_engine_cancel(e);
  fl_engine_cancel(e);
  int ended = 0;
  while (fl_engine_pending(e) > 0)
    if (fl_engine_wait(e, 2000, &r)) {
      if (r.code != FL_OK && r.code != FL_ECANCELLED)
        fail_msg("unexpected result after cancel: %s", r.err.msg);
      ended++;
    }
  assert_true(ended >= images - 1); /* one may have ended before cancel */
  uint64_t id;
  assert_int_equal(fl_engine_submit_copy(e, f->src, "image", "t0", f->dst,
                                         "image", "t0", NULL, &id, &err),
                   FL_ECANCELLED);
  fl_engine_free(e);
  fl_engine_free(NULL);
}

/* Threads of this process, from /proc/self/task. */
static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *de;
  if (!d)
    return -1;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* 10,000 jobs submitted at once: the pools are all the threads there are
 * (image workers + blob workers + one download thread per blob worker),
 * however many jobs wait. */
static void test_threads_bounded(void **state) {
  fixture *f = *state;
  make_image(f->src, "t0", 3);
  const int jobs = 10000;
  fl_engine_config cfg = {.blob_workers = 4, .image_workers = 6};
  const int cap = count_threads() + 6 + 4 + 4 + 2;
  fl_engine *e;
  fl_error err;
  assert_int_equal(fl_engine_new(&cfg, &e, &err), FL_OK);
  int most = 0;
  for (int i = 0; i < jobs; i++) {
    uint64_t id;
    assert_int_equal(fl_engine_submit_copy(e, f->src, "image", "t0", f->dst,
                                           "image", "t0", NULL, &id, &err),
                     FL_OK);
    if (i % 250 == 0) {
      int n = count_threads();
      most = n > most ? n : most;
    }
  }
  fl_copy_result r;
  int ok = 0, seen = 0;
  while (fl_engine_pending(e) > 0)
    if (fl_engine_wait(e, 1000, &r)) {
      ok += r.code == FL_OK;
      if (++seen % 500 == 0) {
        int n = count_threads();
        most = n > most ? n : most;
      }
    }
  assert_int_equal(ok, jobs);
  if (most > cap)
    fail_msg("%d threads with %d jobs submitted; the cap is %d", most, jobs,
             cap);
  fl_engine_free(e);
}

/* Cancel one job of six while all run: it ends CANCELLED, the other five
 * complete, and the same copy submitted again afterwards completes. */
static void test_cancel_one_job(void **state) {
  fixture *f = *state;
  const int images = 6;
  for (int i = 0; i < images; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "t%d", i);
    make_image(f->src, tag, 80);
  }
  fl_engine_config cfg = {.blob_workers = 1, .pipe_capacity = 1024};
  fl_engine *e;
  fl_error err;
  assert_int_equal(fl_engine_new(&cfg, &e, &err), FL_OK);
  uint64_t ids[6];
  for (int i = 0; i < images; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "t%d", i);
    assert_int_equal(fl_engine_submit_copy(e, f->src, "image", tag, f->dst,
                                           "image", tag, NULL, &ids[i], &err),
                     FL_OK);
  }
  assert_true(fl_engine_cancel_job(e, ids[3]));
  assert_false(fl_engine_cancel_job(e, 9999));
  fl_copy_result r;
  while (fl_engine_pending(e) > 0) {
    uint64_t id = fl_engine_wait(e, 1000, &r);
    if (!id)
      continue;
    if (id == ids[3])
      assert_int_equal(r.code, FL_ECANCELLED);
    else if (r.code != FL_OK)
      fail_msg("job %llu failed beside the cancelled one: %s",
               (unsigned long long)id, r.err.msg);
  }
  fl_descriptor d;
  assert_int_equal(f->dst->ops->manifest_head(f->dst, "image", "t3", &d, &err),
                   FL_ENOT_FOUND);
  uint64_t id;
  assert_int_equal(fl_engine_submit_copy(e, f->src, "image", "t3", f->dst,
                                         "image", "t3", NULL, &id, &err),
                   FL_OK);
  while (fl_engine_wait(e, 1000, &r) != id)
    ;
  assert_int_equal(r.code, FL_OK);
  fl_engine_free(e);
}

/* The caller drops its endpoints right after submitting: the jobs hold
 * their own references, so they complete (ASan sees any use after free). */
static void test_endpoints_released_while_running(void **state) {
  fixture *f = *state;
  const int images = 4;
  for (int i = 0; i < images; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "t%d", i);
    make_image(f->src, tag, 40);
  }
  char path[128];
  fl_endpoint *src, *dst;
  fl_error err;
  snprintf(path, sizeof path, "%s/src", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 0, &src, &err), FL_OK);
  snprintf(path, sizeof path, "%s/dst2", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 1, &dst, &err), FL_OK);
  fl_engine_config cfg = {.blob_workers = 2, .pipe_capacity = 1024};
  fl_engine *e;
  assert_int_equal(fl_engine_new(&cfg, &e, &err), FL_OK);
  for (int i = 0; i < images; i++) {
    char tag[32];
    uint64_t id;
    snprintf(tag, sizeof tag, "t%d", i);
    assert_int_equal(fl_engine_submit_copy(e, src, "image", tag, dst, "image",
                                           tag, NULL, &id, &err),
                     FL_OK);
  }
  fl_endpoint_unref(src);
  fl_endpoint_unref(dst);
  fl_copy_result r;
  while (fl_engine_pending(e) > 0)
    if (fl_engine_wait(e, 1000, &r) && r.code != FL_OK)
      fail_msg("copy failed after its endpoints were released: %s", r.err.msg);
  fl_engine_free(e);
}

/* The pipe on its own: a producer thread and a consumer with odd sizes. */
typedef struct pipe_test {
  fl_pipe *p;
  size_t total;
} pipe_test;

static void *pipe_writer(void *arg) {
  pipe_test *t = arg;
  unsigned char buf[777];
  size_t sent = 0;
  while (sent < t->total) {
    size_t n = t->total - sent < sizeof buf ? t->total - sent : sizeof buf;
    for (size_t i = 0; i < n; i++)
      buf[i] = (unsigned char)((sent + i) * 13);
    if (fl_pipe_write(t->p, buf, n, NULL) != FL_OK)
      return NULL;
    sent += n;
  }
  fl_pipe_close(t->p);
  return NULL;
}

static void test_pipe(void **state) {
  (void)state;
  pipe_test t = {fl_pipe_new(1000), 1000000};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, pipe_writer, &t), 0);
  unsigned char buf[333];
  size_t got = 0;
  long long n;
  while ((n = fl_pipe_read(t.p, buf, sizeof buf, NULL)) > 0) {
    for (long long i = 0; i < n; i++)
      assert_int_equal(buf[i], (unsigned char)((got + (size_t)i) * 13));
    got += (size_t)n;
  }
  assert_int_equal(n, 0);
  assert_int_equal(got, t.total);
  pthread_join(th, NULL);
  fl_pipe_free(t.p);

  /* a failure wakes a blocked writer */
  t.p = fl_pipe_new(10);
  assert_int_equal(pthread_create(&th, NULL, pipe_writer, &t), 0);
  fl_error err;
  fl_error_set(&err, FL_ECANCELLED, "stop");
  usleep(1000);
  fl_pipe_fail(t.p, &err);
  pthread_join(th, NULL);
  assert_int_equal(fl_pipe_read(t.p, buf, 1, &err), -1);
  assert_int_equal(err.code, FL_ECANCELLED);
  fl_pipe_free(t.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pipe),
      cmocka_unit_test_setup_teardown(test_stress_copy_and_rerun, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_known_blobs_mount_across_repos,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_source_commits_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_mid_way, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_one_job, setup, teardown),
      cmocka_unit_test_setup_teardown(test_endpoints_released_while_running,
                                      setup, teardown),
  };
  return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
