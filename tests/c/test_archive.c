/*
 * test_archive.c - the tar unit and archive endpoints on real files: tar
 * written here and read back (long names through the ustar prefix, members
 * of unknown size), archives written by GNU tar in pax and GNU formats
 * (long names, pax headers), truncated and corrupt archives refused with
 * the file named, and a 64 MiB layer read from an oci-archive in chunks
 * (never whole) with its digest checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/archive.h"
#include "registry/tar.h"

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/fl-archive-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
}

static void read_member(int fd, const fl_tar_member *m, char *buf) {
  assert_int_equal(pread(fd, buf, m->size, (off_t)m->offset), (ssize_t)m->size);
  buf[m->size] = '\0';
}

static void test_round_trip(void **state) {
  (void)state;
  char p[256];
  path_of(p, sizeof p, "rt.tar");
  int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  fl_tar_writer w = {.fd = fd, .path = p, .pos = 0};
  fl_error err;
  char longname[200];
  memset(longname, 'a', sizeof longname);
  memcpy(longname + 120, "/", 1);
  longname[199] = '\0';
  assert_int_equal(fl_tar_add_dir(&w, "blobs", &err), FL_OK);
  assert_int_equal(fl_tar_add_bytes(&w, "hello.txt", "first", 5, &err), FL_OK);
  assert_int_equal(fl_tar_add_bytes(&w, "hello.txt", "hello", 5, &err), FL_OK);
  assert_int_equal(fl_tar_add_bytes(&w, longname, "long", 4, &err), FL_OK);
  uint64_t at;
  assert_int_equal(fl_tar_open_member(&w, "later.bin", &at, &err), FL_OK);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(fl_tar_write(&w, "0123456789", 10, &err), FL_OK);
  assert_int_equal(fl_tar_close_member(&w, "later.bin", at, &err), FL_OK);
  assert_int_equal(fl_tar_finish(&w, &err), FL_OK);
  /* a name that cannot be split is refused */
  char toolong[300];
  memset(toolong, 'b', sizeof toolong);
  toolong[299] = '\0';
  assert_int_equal(fl_tar_add_bytes(&w, toolong, "x", 1, &err), FL_EINVALID);
  close(fd);

  /* GNU tar agrees */
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "tar -tf %s > %s/list && tar -xOf %s later.bin | wc -c | "
           "grep -qx 10000",
           p, dir, p);
  assert_int_equal(system(cmd), 0);

  fd = open(p, O_RDONLY);
  fl_tar_index ix;
  assert_int_equal(fl_tar_index_read(fd, p, &ix, &err), FL_OK);
  assert_int_equal(ix.count, 5);
  const fl_tar_member *m = fl_tar_find(&ix, "hello.txt");
  assert_non_null(m);
  char buf[16384];
  read_member(fd, m, buf);
  assert_string_equal(buf, "hello"); /* the last one wins, as tar extracts */
  assert_null(fl_tar_find(&ix, "hello.tx"));
  assert_null(fl_tar_find(&ix, "hello.txtx"));
  assert_null(fl_tar_find(&ix, ""));
  m = fl_tar_find(&ix, longname);
  assert_non_null(m);
  read_member(fd, m, buf);
  assert_string_equal(buf, "long");
  m = fl_tar_find(&ix, "later.bin");
  assert_non_null(m);
  assert_int_equal(m->size, 10000);
  assert_null(fl_tar_find(&ix, "blobs")); /* a directory, not a file */
  fl_tar_index_clear(&ix);
  close(fd);
}

/* Archives from GNU tar in the formats other tools write. */
static void test_gnu_tar_formats(void **state) {
  (void)state;
  const char *formats[] = {"pax", "gnu", "ustar"};
  for (int f = 0; f < 3; f++) {
    char cmd[1024], p[256];
    path_of(p, sizeof p, "fmt.tar");
    snprintf(cmd, sizeof cmd,
             "cd %s && rm -rf src && mkdir -p src/%s && "
             "printf data > src/%s/file && printf x > src/short && "
             "tar --format=%s -C src -cf %s ./short %s/file",
             dir,
             "d1234567890/d1234567890/d1234567890/d1234567890/d1234567890/"
             "d1234567890/d1234567890/d1234567890/d1234567890",
             "d1234567890/d1234567890/d1234567890/d1234567890/d1234567890/"
             "d1234567890/d1234567890/d1234567890/d1234567890",
             formats[f], p,
             "d1234567890/d1234567890/d1234567890/d1234567890/d1234567890/"
             "d1234567890/d1234567890/d1234567890/d1234567890");
    assert_int_equal(system(cmd), 0);
    int fd = open(p, O_RDONLY);
    fl_tar_index ix;
    fl_error err;
    assert_int_equal(fl_tar_index_read(fd, p, &ix, &err), FL_OK);
    assert_non_null(fl_tar_find(&ix, "short")); /* "./short" cleaned */
    const fl_tar_member *m = fl_tar_find(
        &ix, "d1234567890/d1234567890/d1234567890/d1234567890/d1234567890/"
             "d1234567890/d1234567890/d1234567890/d1234567890/file");
    assert_non_null(m);
    char buf[8];
    read_member(fd, m, buf);
    assert_string_equal(buf, "data");
    fl_tar_index_clear(&ix);
    close(fd);
  }
}

static void test_bad_archives(void **state) {
  (void)state;
  char p[256], cmd[600];
  fl_error err;
  fl_tar_index ix;
  /* not a tar */
  path_of(p, sizeof p, "junk.tar");
  FILE *f = fopen(p, "wb");
  for (int i = 0; i < 2048; i++)
    fputc('x', f);
  fclose(f);
  int fd = open(p, O_RDONLY);
  assert_int_equal(fl_tar_index_read(fd, p, &ix, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "junk.tar: not a tar archive"));
  close(fd);
  /* truncated inside a member */
  path_of(p, sizeof p, "cut.tar");
  snprintf(cmd, sizeof cmd,
           "cd %s && head -c 100000 /dev/urandom > big && tar -cf full.tar "
           "big && head -c 50000 full.tar > %s",
           dir, p);
  assert_int_equal(system(cmd), 0);
  fd = open(p, O_RDONLY);
  assert_int_equal(fl_tar_index_read(fd, p, &ix, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "truncated"));
  close(fd);
  /* archive endpoints name the file and what is missing */
  fl_endpoint *ep;
  assert_int_equal(fl_archive_open(FL_ARCHIVE_OCI, p, 0, &ep, &err),
                   FL_EINVALID);
  path_of(p, sizeof p, "full.tar");
  assert_int_equal(fl_archive_open(FL_ARCHIVE_OCI, p, 0, &ep, &err),
                   FL_EINVALID);
  assert_non_null(strstr(err.msg, "is not an oci-archive (no index.json"));
  assert_int_equal(fl_archive_open(FL_ARCHIVE_DOCKER, p, 0, &ep, &err),
                   FL_EINVALID);
  assert_non_null(strstr(err.msg, "no manifest.json"));
  path_of(p, sizeof p, "missing.tar");
  assert_int_equal(fl_archive_open(FL_ARCHIVE_OCI, p, 0, &ep, &err),
                   FL_ENOT_FOUND);
  /* nothing written: finishing says so and writes no file */
  path_of(p, sizeof p, "empty.tar");
  assert_int_equal(fl_archive_open(FL_ARCHIVE_OCI, p, 1, &ep, &err), FL_OK);
  assert_int_equal(fl_archive_finish(ep, &err), FL_ENOT_FOUND);
  assert_non_null(strstr(err.msg, "nothing was written"));
  assert_int_not_equal(access(p, F_OK), 0);
  fl_endpoint_free(ep);
}

/* ---- a big blob, streamed -------------------------------------------------- */

typedef struct count_sink {
  fl_hasher *h;
  uint64_t bytes;
  size_t max_chunk;
} count_sink;

static fl_code count_write(void *ud, const void *data, size_t len,
                           fl_error *err) {
  (void)err;
  count_sink *c = ud;
  c->bytes += len;
  if (len > c->max_chunk)
    c->max_chunk = len;
  return fl_hasher_update(c->h, data, len);
}

static void test_big_blob_streamed(void **state) {
  (void)state;
  char cmd[1024], p[256];
  path_of(p, sizeof p, "big.tar");
  /* an OCI layout with one 64 MiB blob, tarred by GNU tar */
  snprintf(cmd, sizeof cmd,
           "cd %s && rm -rf lay && mkdir -p lay/blobs/sha256 && "
           "head -c 67108864 /dev/urandom > blob && "
           "h=$(sha256sum blob | cut -c1-64) && mv blob lay/blobs/sha256/$h && "
           "echo $h > hex && printf '{\"imageLayoutVersion\":\"1.0.0\"}' > "
           "lay/oci-layout && printf "
           "'{\"schemaVersion\":2,\"manifests\":[]}' > lay/index.json && "
           "tar -C lay -cf %s oci-layout index.json blobs",
           dir, p);
  assert_int_equal(system(cmd), 0);
  char hexfile[256], digest[80] = "sha256:";
  path_of(hexfile, sizeof hexfile, "hex");
  FILE *f = fopen(hexfile, "r");
  assert_non_null(fgets(digest + 7, 65, f));
  fclose(f);
  fl_endpoint *ep;
  fl_error err;
  assert_int_equal(fl_archive_open(FL_ARCHIVE_OCI, p, 0, &ep, &err), FL_OK);
  uint64_t size = 0;
  assert_int_equal(ep->ops->blob_exists(ep, "image", digest, &size, &err),
                   FL_OK);
  assert_int_equal(size, 64 << 20);
  count_sink c = {fl_hasher_new(FL_SHA256), 0, 0};
  fl_sink sink = {count_write, &c};
  assert_int_equal(ep->ops->blob_get(ep, "image", digest, 0, &sink, &err),
                   FL_OK);
  char got[FL_DIGEST_STR_MAX];
  fl_hasher_final(c.h, got);
  assert_string_equal(got, digest);
  assert_int_equal(c.bytes, 64 << 20);
  assert_true(c.max_chunk <= 256 * 1024); /* never the whole blob */
  /* from an offset, as a resumed download asks */
  fl_hasher_reset(c.h);
  c.bytes = 0;
  assert_int_equal(ep->ops->blob_get(ep, "image", digest, 1000, &sink, &err),
                   FL_OK);
  assert_int_equal(c.bytes, (64 << 20) - 1000);
  fl_hasher_free(c.h);
  /* reading only: writes are refused */
  assert_int_equal(ep->ops->manifest_put(ep, "image", "x", "{}", 2,
                                         "application/json", &err),
                   FL_EUNSUPPORTED);
  assert_non_null(strstr(err.msg, "opened for reading"));
  fl_endpoint_free(ep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_gnu_tar_formats),
      cmocka_unit_test(test_bad_archives),
      cmocka_unit_test(test_big_blob_streamed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
