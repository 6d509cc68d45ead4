/*
 * test_blobcopy.c - a verified blob copy whose upload seeks, between OCI
 * layouts.
 *
 * Real endpoints on disk and the real download thread. The destination is
 * a real OCI layout behind a thin endpoint whose blob_put drives the source
 * the way a resuming registry upload does: it reads part of the blob, seeks
 * back or ahead to where "the registry" says it stopped, checks every byte
 * served from there against the content, and at the end hands the source,
 * from byte 0, to the layout's own blob_put, which verifies and commits.
 * The source endpoint likewise wraps a real layout and records the offset
 * of every download, so a test sees where each restart began. Also
 * fl_hasher_copy.
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

#include "engine/blobcopy.h"
#include "registry/oci_layout.h"

#define MIB (1024ULL * 1024)
#define BLOB_SIZE (21 * MIB + 12345)

/* ---- the content --------------------------------------------------------- */

static unsigned char *make_content(uint64_t n) {
  unsigned char *p = malloc(n);
  assert_non_null(p);
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (uint64_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (unsigned char)x;
  }
  return p;
}

typedef struct mem_src {
  const unsigned char *p;
  uint64_t left;
} mem_src;

static long long mem_read(void *ud, void *buf, size_t len, fl_error *err) {
  (void)err;
  mem_src *m = ud;
  size_t n = m->left < len ? (size_t)m->left : len;
  memcpy(buf, m->p, n);
  m->p += n;
  m->left -= n;
  return (long long)n;
}

/* ---- the source: a layout that records where each download starts ------- */

typedef struct recording_ep {
  fl_endpoint base;
  fl_endpoint *inner;
  const char *serve; /* when set: the blob served whatever is asked */
  uint64_t offsets[16];
  size_t n_offsets;
} recording_ep;

static fl_code rec_blob_get(fl_endpoint *ep, const char *repo,
                            const char *digest, uint64_t offset, fl_sink *sink,
                            fl_error *err) {
  recording_ep *r = (recording_ep *)ep;
  if (r->n_offsets < 16)
    r->offsets[r->n_offsets++] = offset;
  return r->inner->ops->blob_get(r->inner, repo, r->serve ? r->serve : digest,
                                 offset, sink, err);
}

static const char *rec_describe(fl_endpoint *ep) {
  (void)ep;
  return "recording layout";
}

static const fl_endpoint_ops recording_ops = {
    .kind = "oci", .blob_get = rec_blob_get, .describe = rec_describe};

/* ---- the destination: a layout behind an upload that seeks --------------- */

typedef struct step {
  uint64_t read; /* read this many bytes (UINT64_MAX: to the end) */
  uint64_t seek; /* then seek here */
} step;

typedef struct resuming_ep {
  fl_endpoint base;
  fl_endpoint *inner;
  const unsigned char *content;
  const step *steps;
  size_t n_steps;
  int reads_wrong; /* bytes served that differ from the content */
} resuming_ep;

static fl_code res_blob_put(fl_endpoint *ep, const char *repo,
                            const char *digest, uint64_t size, fl_source *src,
                            fl_error *err) {
  resuming_ep *r = (resuming_ep *)ep;
  static unsigned char buf[100003]; /* an odd size: reads cross marks */
  uint64_t pos = 0;
  assert_non_null(src->seek);
  for (size_t i = 0; i < r->n_steps; i++) {
    uint64_t want = r->steps[i].read;
    while (want > 0) {
      size_t len = want < sizeof buf ? (size_t)want : sizeof buf;
      long long n = src->read(src->ud, buf, len, err);
      if (n < 0)
        return err->code;
      if (n == 0)
        break;
      if (memcmp(buf, r->content + pos, (size_t)n) != 0)
        r->reads_wrong++;
      pos += (uint64_t)n;
      if (want != UINT64_MAX)
        want -= (uint64_t)n;
    }
    fl_code rc = src->seek(src->ud, r->steps[i].seek, err);
    if (rc != FL_OK)
      return rc;
    pos = r->steps[i].seek;
  }
  assert_int_equal(pos, 0); /* the script ends at byte 0 */
  return r->inner->ops->blob_put(r->inner, repo, digest, size, src, err);
}

static const char *res_describe(fl_endpoint *ep) {
  (void)ep;
  return "resuming layout";
}

static const fl_endpoint_ops resuming_ops = {
    .kind = "oci", .blob_put = res_blob_put, .describe = res_describe};

/* ---- fixture -------------------------------------------------------------- */

typedef struct fixture {
  char dir[64];
  fl_endpoint *src_layout, *dst_layout;
  recording_ep src;
  resuming_ep dst;
  unsigned char *content;
  char digest[FL_DIGEST_STR_MAX];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->dir, sizeof f->dir, "/tmp/fl-blobcopy-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char path[128];
  fl_error err;
  snprintf(path, sizeof path, "%s/src", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 1, &f->src_layout, &err), FL_OK);
  snprintf(path, sizeof path, "%s/dst", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 1, &f->dst_layout, &err), FL_OK);
  f->content = make_content(BLOB_SIZE);
  assert_int_equal(
      fl_digest_buffer(FL_SHA256, f->content, BLOB_SIZE, f->digest), FL_OK);
  mem_src m = {f->content, BLOB_SIZE};
  fl_source s = {mem_read, NULL, &m, NULL};
  assert_int_equal(f->src_layout->ops->blob_put(f->src_layout, "image",
                                                f->digest, BLOB_SIZE, &s, &err),
                   FL_OK);
  f->src.base.ops = &recording_ops;
  f->src.inner = f->src_layout;
  f->dst.base.ops = &resuming_ops;
  f->dst.inner = f->dst_layout;
  f->dst.content = f->content;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  fl_endpoint_free(f->src_layout);
  fl_endpoint_free(f->dst_layout);
  free(f->content);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static fl_code run_copy(fixture *f, const fl_descriptor *d,
                        _Atomic uint64_t *progress, fl_error *err) {
  fl_blob_copy c = {.src = &f->src.base,
                    .src_repo = "image",
                    .dst = &f->dst.base,
                    .dst_repo = "image",
                    .desc = d,
                    .pipe_capacity = 256 * 1024,
                    .progress = progress};
  return fl_blob_copy_run(&c, err);
}

/* ---- tests ---------------------------------------------------------------- */

/* Back to a point just past a hash snapshot, ahead past bytes never served,
 * back again after the whole blob was verified, then from 0: every byte
 * served is right, each restart downloads from the snapshot at or before
 * the new position, progress counts the blob once, and the committed blob
 * is whole. */
static void test_seek_back_and_ahead(void **state) {
  fixture *f = *state;
  const step steps[] = {
      {17 * MIB + 5, 8 * MIB + 100}, /* back: restart at the 8 MiB snapshot */
      {3 * MIB, 20 * MIB},           /* ahead: hash and skip 11..20 MiB */
      {UINT64_MAX, 16 * MIB},        /* verified, then back to 16 MiB */
      {UINT64_MAX, 0},               /* and from byte 0 for the layout */
  };
  f->dst.steps = steps;
  f->dst.n_steps = sizeof steps / sizeof steps[0];
  fl_descriptor d = {.size = BLOB_SIZE};
  snprintf(d.digest, sizeof d.digest, "%s", f->digest);
  _Atomic uint64_t progress = 0;
  fl_error err;
  fl_code rc = run_copy(f, &d, &progress, &err);
  if (rc != FL_OK)
    fail_msg("copy failed: %s", err.msg);
  assert_int_equal(f->dst.reads_wrong, 0);
  assert_int_equal(atomic_load(&progress), BLOB_SIZE);
  const uint64_t want[] = {0, 8 * MIB, 16 * MIB, 0};
  assert_int_equal(f->src.n_offsets, 4);
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(f->src.offsets[i], want[i]);
  uint64_t size = 0;
  assert_int_equal(f->dst_layout->ops->blob_exists(f->dst_layout, "image",
                                                   f->digest, &size, &err),
                   FL_OK);
  assert_int_equal(size, BLOB_SIZE);
  char path[256], got[FL_DIGEST_STR_MAX];
  snprintf(path, sizeof path, "%s/dst/blobs/sha256/%s", f->dir, f->digest + 7);
  assert_int_equal(fl_digest_file(FL_SHA256, path, got, &size, &err), FL_OK);
  assert_string_equal(got, f->digest);
}

/* The source's bytes do not match the digest asked for: after a seek back
 * the last chunk is still held back with DIGEST_MISMATCH and nothing is
 * committed. */
static void test_seek_keeps_the_digest_check(void **state) {
  fixture *f = *state;
  const step steps[] = {{12 * MIB, 5 * MIB}, {UINT64_MAX, 0}};
  f->dst.steps = steps;
  f->dst.n_steps = 2;
  fl_descriptor d = {.size = BLOB_SIZE};
  /* the digest of other content of the same size */
  f->content[BLOB_SIZE - 1] ^= 0xff;
  assert_int_equal(fl_digest_buffer(FL_SHA256, f->content, BLOB_SIZE, d.digest),
                   FL_OK);
  f->content[BLOB_SIZE - 1] ^= 0xff;
  f->src.serve = f->digest;
  _Atomic uint64_t progress = 0;
  fl_error err;
  assert_int_equal(run_copy(f, &d, &progress, &err), FL_EDIGEST_MISMATCH);
  assert_non_null(strstr(err.msg, "nothing was committed"));
  assert_true(atomic_load(&progress) < BLOB_SIZE);
  uint64_t size;
  assert_int_equal(f->dst_layout->ops->blob_exists(f->dst_layout, "image",
                                                   d.digest, &size, &err),
                   FL_ENOT_FOUND);
}

/* A seek past the declared size is refused. */
static void test_seek_past_the_end(void **state) {
  fixture *f = *state;
  const step steps[] = {{MIB, BLOB_SIZE + 1}};
  f->dst.steps = steps;
  f->dst.n_steps = 1;
  fl_descriptor d = {.size = BLOB_SIZE};
  snprintf(d.digest, sizeof d.digest, "%s", f->digest);
  fl_error err;
  assert_int_equal(run_copy(f, &d, NULL, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "cannot resume"));
}

static void test_hasher_copy(void **state) {
  (void)state;
  char a[FL_DIGEST_STR_MAX], b[FL_DIGEST_STR_MAX], want[FL_DIGEST_STR_MAX];
  fl_hasher *h = fl_hasher_new(FL_SHA256);
  fl_hasher *snap = fl_hasher_new(FL_SHA256);
  fl_hasher *other = fl_hasher_new(FL_SHA512);
  assert_non_null(h);
  assert_non_null(snap);
  assert_non_null(other);
  assert_int_equal(fl_hasher_update(h, "hello ", 6), FL_OK);
  assert_int_equal(fl_hasher_copy(snap, h), FL_OK);
  assert_int_equal(fl_hasher_copy(other, h), FL_EINVALID);
  assert_int_equal(fl_hasher_update(h, "world", 5), FL_OK);
  assert_int_equal(fl_hasher_final(h, a), FL_OK);
  assert_int_equal(fl_hasher_copy(snap, h), FL_EINVALID); /* h is finished */
  /* the snapshot goes on from "hello " */
  assert_int_equal(fl_hasher_update(snap, "world", 5), FL_OK);
  assert_int_equal(fl_hasher_final(snap, b), FL_OK);
  assert_int_equal(fl_digest_buffer(FL_SHA256, "hello world", 11, want), FL_OK);
  assert_string_equal(a, want);
  assert_string_equal(b, want);
  /* a finished hasher can be restored from a snapshot */
  assert_int_equal(fl_hasher_reset(snap), FL_OK);
  assert_int_equal(fl_hasher_update(snap, "hello ", 6), FL_OK);
  assert_int_equal(fl_hasher_copy(h, snap), FL_OK);
  assert_int_equal(fl_hasher_update(h, "world", 5), FL_OK);
  assert_int_equal(fl_hasher_final(h, a), FL_OK);
  assert_string_equal(a, want);
  fl_hasher_free(h);
  fl_hasher_free(snap);
  fl_hasher_free(other);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hasher_copy),
      cmocka_unit_test_setup_teardown(test_seek_back_and_ahead, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_seek_keeps_the_digest_check, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_seek_past_the_end, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
