/*
 * test_image_bounds.c - what one image may make the engine fetch and hold
 * (issue #18), between real OCI layouts on disk: an index naming the same
 * child thousands of times fetches and pushes it once and the copy
 * completes; an index of more distinct children than max_image_manifests,
 * or manifests over max_image_manifest_bytes, fails with TOO_LARGE naming
 * the bound and pushes nothing; the first blob that fails takes the image's
 * queued blobs off the queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine.h"
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

static void put_blob(fl_endpoint *ep, const char *content, char *digest) {
  fl_error err;
  assert_int_equal(
      fl_digest_buffer(FL_SHA256, content, strlen(content), digest), FL_OK);
  const char *cursor = content;
  fl_source src = {mem_read, NULL, &cursor, NULL};
  assert_int_equal(
      ep->ops->blob_put(ep, "image", digest, strlen(content), &src, &err),
      FL_OK);
}

/* Push manifest text under tag (or its digest); its digest into digest. */
static void put_manifest(fl_endpoint *ep, const char *m, const char *mt,
                         const char *tag, char *digest) {
  fl_error err;
  assert_int_equal(fl_digest_buffer(FL_SHA256, m, strlen(m), digest), FL_OK);
  assert_int_equal(ep->ops->manifest_put(ep, "image", tag ? tag : digest, m,
                                         strlen(m), mt, &err),
                   FL_OK);
}

/* An image of `layers` layers; with skip_first, layer 0's blob is left
 * out of the store (its download fails). Returns the manifest's size. */
static size_t make_image(fl_endpoint *ep, const char *name, int layers,
                         int skip_first, const char *tag, char *digest) {
  char cfg[160], cfg_digest[FL_DIGEST_STR_MAX];
  snprintf(cfg, sizeof cfg,
           "{\"architecture\":\"amd64\",\"os\":\"linux\","
           "\"name\":\"%s\"}",
           name);
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
    char content[96], d[FL_DIGEST_STR_MAX];
    snprintf(content, sizeof content, "layer %d of %s", i, name);
    if (i == 0 && skip_first)
      assert_int_equal(fl_digest_buffer(FL_SHA256, content, strlen(content), d),
                       FL_OK);
    else
      put_blob(ep, content, d);
    at += (size_t)snprintf(m + at, cap - at,
                           "%s{\"mediaType\":\"application/"
                           "vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
                           "\"size\":%zu}",
                           i ? "," : "", d, strlen(content));
  }
  snprintf(m + at, cap - at, "]}");
  put_manifest(ep, m, FL_MT_OCI_MANIFEST, tag, digest);
  size_t len = strlen(m);
  free(m);
  return len;
}

/* An index listing children[i % nchildren] `count` times. */
static void make_index(fl_endpoint *ep, char (*children)[FL_DIGEST_STR_MAX],
                       const size_t *sizes, size_t nchildren, size_t count,
                       const char *tag) {
  size_t cap = 256 + count * 300;
  char *m = malloc(cap);
  assert_non_null(m);
  size_t at = (size_t)snprintf(m, cap,
                               "{\"schemaVersion\":2,\"mediaType\":"
                               "\"" FL_MT_OCI_INDEX "\",\"manifests\":[");
  for (size_t i = 0; i < count; i++)
    at += (size_t)snprintf(
        m + at, cap - at,
        "%s{\"mediaType\":\"" FL_MT_OCI_MANIFEST "\",\"digest\":\"%s\","
        "\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":"
        "\"amd64\"}}",
        i ? "," : "", children[i % nchildren], sizes[i % nchildren]);
  snprintf(m + at, cap - at, "]}");
  char digest[FL_DIGEST_STR_MAX];
  put_manifest(ep, m, FL_MT_OCI_INDEX, tag, digest);
  free(m);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->dir, sizeof f->dir, "/tmp/fl-bounds-XXXXXX");
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

/* Copy image:tag to the destination with engine config cfg. */
static void copy(fixture *f, const fl_engine_config *cfg, const char *tag,
                 fl_copy_result *r) {
  fl_engine *e;
  fl_error err;
  uint64_t id;
  assert_int_equal(fl_engine_new(cfg, &e, &err), FL_OK);
  assert_int_equal(fl_engine_submit_copy(e, f->src, "image", tag, f->dst,
                                         "image", tag, NULL, &id, &err),
                   FL_OK);
  assert_int_equal(fl_engine_wait(e, -1, r), id);
  fl_engine_free(e);
}

static void assert_not_pushed(fixture *f, const char *tag) {
  fl_descriptor d;
  fl_error err;
  assert_int_equal(f->dst->ops->manifest_head(f->dst, "image", tag, &d, &err),
                   FL_ENOT_FOUND);
}

/* The same child 5,000 times: fetched, copied and pushed once. */
static void test_fanout_child_once(void **state) {
  fixture *f = *state;
  char child[1][FL_DIGEST_STR_MAX];
  size_t size = make_image(f->src, "child", 3, 0, NULL, child[0]);
  make_index(f->src, child, &size, 1, 5000, "fan");
  fl_engine_config cfg = {.blob_workers = 4};
  fl_copy_result r;
  copy(f, &cfg, "fan", &r);
  if (r.code != FL_OK)
    fail_msg("copy failed: %s", r.err.msg);
  assert_int_equal(r.manifests_pushed, 2); /* the child, then the index */
  assert_int_equal(r.blobs_copied, 4);     /* its config and 3 layers */
  assert_string_equal(r.digest, r.src_digest);
}

/* 50 distinct children, a bound of 10: TOO_LARGE naming the bound, and
 * nothing pushed (the index is refused before any child is fetched). */
static void test_distinct_children_bound(void **state) {
  fixture *f = *state;
  char kids[50][FL_DIGEST_STR_MAX];
  size_t sizes[50];
  for (int i = 0; i < 50; i++) {
    char name[16];
    snprintf(name, sizeof name, "kid%d", i);
    sizes[i] = make_image(f->src, name, 1, 0, NULL, kids[i]);
  }
  make_index(f->src, kids, sizes, 50, 50, "wide");
  fl_engine_config cfg = {.blob_workers = 2, .max_image_manifests = 10};
  fl_copy_result r;
  copy(f, &cfg, "wide", &r);
  assert_int_equal(r.code, FL_ETOO_LARGE);
  assert_non_null(strstr(r.err.msg, "max_image_manifests"));
  assert_non_null(strstr(r.err.msg, "over 10 distinct"));
  assert_int_equal(r.manifests_pushed, 0);
  assert_int_equal(r.blobs_copied, 0);
  assert_not_pushed(f, "wide");
  /* 51 (the index and its 50) is within a bound of 51 */
  cfg.max_image_manifests = 51;
  copy(f, &cfg, "wide", &r);
  if (r.code != FL_OK)
    fail_msg("copy within the bound failed: %s", r.err.msg);
  assert_int_equal(r.manifests_pushed, 51);
}

/* Manifest bytes: the bound counts the root and every child fetched. */
static void test_manifest_bytes_bound(void **state) {
  fixture *f = *state;
  char child[1][FL_DIGEST_STR_MAX];
  size_t size = make_image(f->src, "child", 2, 0, NULL, child[0]);
  make_index(f->src, child, &size, 1, 20, "bytes"); /* ~3.6 KB */
  fl_engine_config cfg = {.blob_workers = 2, .max_image_manifest_bytes = 2000};
  fl_copy_result r;
  copy(f, &cfg, "bytes", &r);
  assert_int_equal(r.code, FL_ETOO_LARGE);
  assert_non_null(strstr(r.err.msg, "max_image_manifest_bytes"));
  assert_not_pushed(f, "bytes");
  cfg.max_image_manifest_bytes = 64 * 1024;
  copy(f, &cfg, "bytes", &r);
  assert_int_equal(r.code, FL_OK);
}

/* 400 layers, the first one missing at the source, one worker: the image
 * fails with the first blob's error and the rest of its queue is dropped
 * (without it, all 399 others would be copied first). */
static void test_first_failed_blob_cancels_the_rest(void **state) {
  fixture *f = *state;
  char digest[FL_DIGEST_STR_MAX];
  make_image(f->src, "broken", 400, 1, "broken", digest);
  fl_engine_config cfg = {.blob_workers = 1, .blob_attempts = 1};
  fl_copy_result r;
  copy(f, &cfg, "broken", &r);
  assert_int_equal(r.code, FL_ENOT_FOUND);
  assert_true(r.blobs_copied < 20);
  assert_int_equal(r.manifests_pushed, 0);
  assert_not_pushed(f, "broken");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fanout_child_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_distinct_children_bound, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_manifest_bytes_bound, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_first_failed_blob_cancels_the_rest,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
