/*
 * test_oci_layout.c - the oci:PATH endpoint on real directories: opening and
 * creating layouts, streamed blob put/get with every way an upload can fail
 * (and no temp file left behind), manifests by tag and by digest, retagging,
 * untagged puts, deletes, corruption and size limits, concurrent tagging
 * from threads and from two endpoints, referrers, and interoperability with
 * skopeo (both directions) when skopeo is installed.
 */
/* nftw: declared under _POSIX_C_SOURCE=200809L, set by the build */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "registry/oci_layout.h"

#define LAYER_MT "application/vnd.oci.image.layer.v1.tar+gzip"
#define CONFIG_MT "application/vnd.oci.image.config.v1+json"

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fixture {
  char dir[64];    /* the temp dir holding everything */
  char layout[96]; /* dir/layout */
  fl_endpoint *ep;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int type,
                    struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

/* rm -rf */
static void rm_tree(const char *path) {
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  strcpy(f->dir, "/tmp/fl-oci-XXXXXX");
  if (!mkdtemp(f->dir)) {
    free(f);
    return -1;
  }
  snprintf(f->layout, sizeof f->layout, "%s/layout", f->dir);
  fl_error err = {0};
  if (fl_oci_layout_open(f->layout, 1, &f->ep, &err) != FL_OK) {
    fprintf(stderr, "open: %s\n", err.msg);
    rm_tree(f->dir);
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  fl_endpoint_free(f->ep);
  rm_tree(f->dir);
  free(f);
  return 0;
}

/* ---- a memory source and sink -------------------------------------------- */

typedef struct mem_src {
  const unsigned char *data;
  size_t len, pos;
  size_t chunk;      /* at most this much per read (0: as asked) */
  long long fail_at; /* fail once pos reaches this (-1: never) */
  int reads;
} mem_src;

static long long mem_read(void *ud, void *buf, size_t len, fl_error *err) {
  mem_src *s = ud;
  s->reads++;
  if (s->fail_at >= 0 && s->pos >= (size_t)s->fail_at) {
    fl_error_set(err, FL_ETIMEOUT, "source stalled at byte %zu", s->pos);
    return -1;
  }
  size_t n = s->len - s->pos;
  if (n > len)
    n = len;
  if (s->chunk && n > s->chunk)
    n = s->chunk;
  memcpy(buf, s->data + s->pos, n);
  s->pos += n;
  return (long long)n;
}

static fl_source make_src(mem_src *s, const void *data, size_t len) {
  memset(s, 0, sizeof *s);
  s->data = data;
  s->len = len;
  s->fail_at = -1;
  fl_source src = {mem_read, NULL, s, NULL};
  return src;
}

typedef struct mem_sink {
  unsigned char *data;
  size_t len;
  int writes;
  int fail_after; /* fail on this write (0: never) */
} mem_sink;

static fl_code sink_write(void *ud, const void *data, size_t len,
                          fl_error *err) {
  mem_sink *s = ud;
  if (++s->writes == s->fail_after)
    return fl_error_set(err, FL_ECANCELLED, "sink cancelled");
  unsigned char *p = realloc(s->data, s->len + len);
  if (!p)
    return fl_error_set(err, FL_ENOMEM, "oom");
  memcpy(p + s->len, data, len);
  s->data = p;
  s->len += len;
  return FL_OK;
}

/* ---- content ------------------------------------------------------------- */

static void digest_of(const void *data, size_t len, char *out) {
  assert_int_equal(fl_digest_buffer(FL_SHA256, data, len, out), FL_OK);
}

static void put_blob(fl_endpoint *ep, const void *data, size_t len,
                     char *digest) {
  mem_src ms;
  fl_source src = make_src(&ms, data, len);
  fl_error err = {0};
  digest_of(data, len, digest);
  fl_code rc = ep->ops->blob_put(ep, "r", digest, len, &src, &err);
  if (rc != FL_OK)
    fail_msg("blob_put: %s", err.msg);
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

/* A one-file tar: header, content padded to 512, two zero blocks. */
static size_t make_tar(unsigned char *tar, const char *name,
                       const char *content) {
  size_t clen = strlen(content);
  size_t total = 512 + ((clen + 511) / 512) * 512 + 1024;
  memset(tar, 0, total);
  strcpy((char *)tar, name);
  snprintf((char *)tar + 100, 8, "%07o", 0644u);
  snprintf((char *)tar + 108, 8, "%07o", 0u);
  snprintf((char *)tar + 116, 8, "%07o", 0u);
  snprintf((char *)tar + 124, 12, "%011o", (unsigned)clen);
  snprintf((char *)tar + 136, 12, "%011o", 1700000000u);
  memset(tar + 148, ' ', 8);
  tar[156] = '0';
  strcpy((char *)tar + 257, "ustar");
  tar[263] = '0';
  tar[264] = '0';
  unsigned sum = 0;
  for (int i = 0; i < 512; i++)
    sum += tar[i];
  snprintf((char *)tar + 148, 8, "%06o", sum);
  strcpy((char *)tar + 512, content); /* zero padding follows */
  return total;
}

/* gzip with one stored deflate block (n < 65536): valid, uncompressed. */
static size_t make_gzip(unsigned char *out, const unsigned char *in, size_t n) {
  static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  size_t o = 0;
  memcpy(out, hdr, sizeof hdr);
  o += sizeof hdr;
  out[o++] = 1; /* BFINAL, stored */
  out[o++] = (unsigned char)(n & 0xff);
  out[o++] = (unsigned char)(n >> 8);
  out[o++] = (unsigned char)(~n & 0xff);
  out[o++] = (unsigned char)((~n >> 8) & 0xff);
  memcpy(out + o, in, n);
  o += n;
  uint32_t crc = crc32_of(in, n);
  for (int i = 0; i < 4; i++)
    out[o++] = (unsigned char)(crc >> (8 * i));
  for (int i = 0; i < 4; i++)
    out[o++] = (unsigned char)((uint32_t)n >> (8 * i));
  return o;
}

typedef struct image {
  char config_digest[FL_DIGEST_STR_MAX];
  char layer_digest[FL_DIGEST_STR_MAX];
  char digest[FL_DIGEST_STR_MAX];
  char manifest[2048];
  size_t len;
} image;

/* Put a real image (config, gzip'ed tar layer) and build its manifest; the
 * manifest itself is not put. `label` makes images distinct. */
static void make_image(fl_endpoint *ep, const char *label, image *img) {
  unsigned char tar[4096], gz[4200];
  char config[1024], diff_id[FL_DIGEST_STR_MAX];
  size_t tlen = make_tar(tar, "hello.txt", label);
  size_t glen = make_gzip(gz, tar, tlen);
  digest_of(tar, tlen, diff_id);
  put_blob(ep, gz, glen, img->layer_digest);
  int clen = snprintf(config, sizeof config,
                      "{\"architecture\":\"amd64\",\"os\":\"linux\","
                      "\"config\":{\"Labels\":{\"t\":\"%s\"}},"
                      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                      label, diff_id);
  put_blob(ep, config, (size_t)clen, img->config_digest);
  int n = snprintf(img->manifest, sizeof img->manifest,
                   "{\"schemaVersion\":2,\"mediaType\":\"" FL_MT_OCI_MANIFEST
                   "\",\"config\":{\"mediaType\":\"" CONFIG_MT
                   "\",\"digest\":\"%s\",\"size\":%d},\"layers\":[{"
                   "\"mediaType\":\"" LAYER_MT
                   "\",\"digest\":\"%s\",\"size\":%zu}]}",
                   img->config_digest, clen, img->layer_digest, glen);
  img->len = (size_t)n;
  digest_of(img->manifest, img->len, img->digest);
}

static void put_manifest(fl_endpoint *ep, const char *ref, const char *data,
                         size_t len, const char *mt) {
  fl_error err = {0};
  fl_code rc = ep->ops->manifest_put(ep, "r", ref, data, len, mt, &err);
  if (rc != FL_OK)
    fail_msg("manifest_put %s: %s", ref, err.msg);
}

static json_t *load_index(const fixture *f) {
  char path[160];
  snprintf(path, sizeof path, "%s/index.json", f->layout);
  json_t *root = json_load_file(path, 0, NULL);
  assert_non_null(root);
  return root;
}

static size_t index_count(const fixture *f) {
  json_t *root = load_index(f);
  size_t n = json_array_size(json_object_get(root, "manifests"));
  json_decref(root);
  return n;
}

static int temp_count;

static int count_temp(const char *path, const struct stat *st, int type,
                      struct FTW *ftw) {
  (void)st;
  (void)type;
  if (strstr(path + ftw->base, ".tmp-"))
    temp_count++;
  return 0;
}

/* Names under dir (recursively) of temporary files (".NAME.tmp-XXXXXX"). */
static int count_temps(const char *dir) {
  temp_count = 0;
  nftw(dir, count_temp, 16, FTW_PHYS);
  return temp_count;
}

static void tags_are(fl_endpoint *ep, const char *const *want, size_t n) {
  fl_strlist l = {0};
  fl_error err = {0};
  assert_int_equal(ep->ops->tags(ep, "any", &l, &err), FL_OK);
  assert_int_equal(l.count, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(l.items[i], want[i]);
  fl_strlist_clear(&l);
}

static void write_text(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
}

/* ---- opening ------------------------------------------------------------- */

static void test_open_errors(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = NULL;
  fl_error err = {0};
  char path[160];

  snprintf(path, sizeof path, "%s/missing", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 0, &ep, &err), FL_ENOT_FOUND);
  assert_null(ep);
  assert_non_null(strstr(err.msg, "does not exist"));
  assert_non_null(strstr(err.msg, path));

  snprintf(path, sizeof path, "%s/plain", f->dir);
  assert_int_equal(mkdir(path, 0755), 0);
  assert_int_equal(fl_oci_layout_open(path, 0, &ep, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "is not an OCI image layout"));
  assert_non_null(strstr(err.msg, "no oci-layout"));

  snprintf(path, sizeof path, "%s/file", f->dir);
  write_text(path, "x");
  assert_int_equal(fl_oci_layout_open(path, 0, &ep, &err), FL_EINVALID);
  assert_int_equal(fl_oci_layout_open(path, 1, &ep, &err), FL_EIO);
  assert_non_null(strstr(err.msg, "a file of that name is in the way"));
  assert_null(ep);
  assert_int_equal(fl_oci_layout_open("", 1, &ep, &err), FL_EINVALID);
}

static void test_create_and_ping(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = NULL;
  fl_error err = {0};
  char path[200], file[240];
  struct stat st;

  snprintf(path, sizeof path, "%s/a/b/c/", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 1, &ep, &err), FL_OK);
  assert_string_equal(ep->ops->kind, "oci");
  snprintf(path, sizeof path, "%s/a/b/c", f->dir);
  char want[240];
  snprintf(want, sizeof want, "oci:%s", path);
  assert_string_equal(ep->ops->describe(ep), want);
  assert_int_equal(ep->ops->ping(ep, &err), FL_OK);
  snprintf(file, sizeof file, "%s/blobs", path);
  assert_int_equal(stat(file, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  snprintf(file, sizeof file, "%s/index.json", path);
  json_t *idx = json_load_file(file, 0, NULL);
  assert_non_null(idx);
  assert_int_equal(json_integer_value(json_object_get(idx, "schemaVersion")),
                   2);
  assert_string_equal(json_string_value(json_object_get(idx, "mediaType")),
                      FL_MT_OCI_INDEX);
  assert_int_equal(json_array_size(json_object_get(idx, "manifests")), 0);
  json_decref(idx);

  fl_strlist l = {0};
  assert_int_equal(ep->ops->catalog(ep, 0, &l, &err), FL_OK);
  assert_int_equal(l.count, 1);
  assert_string_equal(l.items[0], path);
  fl_strlist_clear(&l);
  tags_are(ep, NULL, 0);

  /* ping: wrong version, then no oci-layout at all */
  snprintf(file, sizeof file, "%s/oci-layout", path);
  write_text(file, "{\"imageLayoutVersion\":\"9.9\"}");
  assert_int_equal(ep->ops->ping(ep, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "9.9"));
  write_text(file, "not json");
  assert_int_equal(ep->ops->ping(ep, &err), FL_EINVALID);
  assert_int_equal(unlink(file), 0);
  assert_int_equal(ep->ops->ping(ep, &err), FL_ENOT_FOUND);
  assert_non_null(strstr(err.msg, "no oci-layout"));
  fl_endpoint_free(ep);

  /* reopening with create=1 restores it and keeps index.json */
  assert_int_equal(fl_oci_layout_open(path, 1, &ep, &err), FL_OK);
  assert_int_equal(ep->ops->ping(ep, &err), FL_OK);
  fl_endpoint_free(ep);
  assert_int_equal(fl_oci_layout_open(path, 0, &ep, &err), FL_OK);
  fl_endpoint_free(ep);
  assert_int_equal(count_temps(f->dir), 0);
}

/* ---- blobs --------------------------------------------------------------- */

static unsigned char *pattern(size_t n, unsigned seed) {
  unsigned char *p = malloc(n);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (unsigned char)(seed >> 16);
  }
  return p;
}

static void test_blob_roundtrip(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  size_t n = 600 * 1024 + 7;
  unsigned char *data = pattern(n, 1);
  char digest[FL_DIGEST_STR_MAX];
  uint64_t size = 0;
  mem_src ms;
  fl_source src = make_src(&ms, data, n);
  ms.chunk = 10007; /* odd-sized reads */
  digest_of(data, n, digest);

  assert_int_equal(ep->ops->blob_exists(ep, "r", digest, &size, &err),
                   FL_ENOT_FOUND);
  assert_int_equal(ep->ops->blob_put(ep, "r", digest, n, &src, &err), FL_OK);
  assert_int_equal(ep->ops->blob_exists(ep, "other", digest, &size, &err),
                   FL_OK);
  assert_int_equal(size, n);

  /* present: not read again */
  src = make_src(&ms, data, n);
  ms.fail_at = 0;
  assert_int_equal(ep->ops->blob_put(ep, "r", digest, n, &src, &err), FL_OK);
  assert_int_equal(ms.reads, 0);

  /* full and from offsets */
  size_t offsets[] = {0, 1, 256 * 1024, n - 1, n};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
    mem_sink s = {0};
    fl_sink sink = {sink_write, &s};
    assert_int_equal(
        ep->ops->blob_get(ep, "r", digest, offsets[i], &sink, &err), FL_OK);
    assert_int_equal(s.len, n - offsets[i]);
    if (s.len)
      assert_memory_equal(s.data, data + offsets[i], s.len);
    free(s.data);
  }
  mem_sink s = {0};
  fl_sink sink = {sink_write, &s};
  assert_int_equal(ep->ops->blob_get(ep, "r", digest, n + 1, &sink, &err),
                   FL_EINVALID);
  /* a failing sink stops the transfer with its error */
  s.fail_after = 2;
  assert_int_equal(ep->ops->blob_get(ep, "r", digest, 0, &sink, &err),
                   FL_ECANCELLED);
  assert_int_equal(s.writes, 2);
  assert_string_equal(err.msg, "sink cancelled");
  free(s.data);

  assert_int_equal(ep->ops->blob_mount(ep, "r", "x", digest, &err), FL_OK);
  assert_int_equal(ep->ops->blob_delete(ep, "r", digest, &err), FL_OK);
  assert_int_equal(ep->ops->blob_exists(ep, "r", digest, &size, &err),
                   FL_ENOT_FOUND);
  assert_int_equal(ep->ops->blob_mount(ep, "r", "x", digest, &err),
                   FL_EUNSUPPORTED);
  assert_int_equal(ep->ops->blob_delete(ep, "r", digest, &err), FL_ENOT_FOUND);
  s = (mem_sink){0};
  assert_int_equal(ep->ops->blob_get(ep, "r", digest, 0, &sink, &err),
                   FL_ENOT_FOUND);

  /* sha512 blobs live under blobs/sha512 */
  char d512[FL_DIGEST_STR_MAX], path[400];
  assert_int_equal(fl_digest_buffer(FL_SHA512, data, 1000, d512), FL_OK);
  src = make_src(&ms, data, 1000);
  assert_int_equal(ep->ops->blob_put(ep, "r", d512, 1000, &src, &err), FL_OK);
  snprintf(path, sizeof path, "%s/blobs/sha512/%s", f->layout, d512 + 7);
  assert_int_equal(access(path, R_OK), 0);
  free(data);
  assert_int_equal(count_temps(f->dir), 0);
}

static void test_blob_invalid_digests(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  uint64_t size;
  mem_src ms;
  fl_source src = make_src(&ms, "x", 1);
  mem_sink s = {0};
  fl_sink sink = {sink_write, &s};
  const char *bad[] = {
      "../../etc/passwd",
      "sha256:../../../../etc/passwd",
      "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
      "sha256:e3b0",
      "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(ep->ops->blob_exists(ep, "r", bad[i], &size, &err),
                     FL_EINVALID);
    assert_int_equal(ep->ops->blob_get(ep, "r", bad[i], 0, &sink, &err),
                     FL_EINVALID);
    assert_int_equal(ep->ops->blob_put(ep, "r", bad[i], 1, &src, &err),
                     FL_EINVALID);
    assert_int_equal(ep->ops->blob_delete(ep, "r", bad[i], &err), FL_EINVALID);
    assert_int_equal(ep->ops->blob_mount(ep, "r", "o", bad[i], &err),
                     FL_EINVALID);
  }
  assert_int_equal(ep->ops->blob_exists(ep, "r", "md5:abc", &size, &err),
                   FL_EUNSUPPORTED);
  assert_int_equal(ms.reads, 0);
}

static void expect_put_fails(fixture *f, const char *digest, size_t size,
                             const void *data, size_t len, long long fail_at,
                             fl_code want, const char *msg_part) {
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  uint64_t got;
  mem_src ms;
  fl_source src = make_src(&ms, data, len);
  ms.fail_at = fail_at;
  ms.chunk = 100000;
  assert_int_equal(ep->ops->blob_put(ep, "r", digest, size, &src, &err), want);
  if (!strstr(err.msg, msg_part))
    fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
  assert_int_equal(ep->ops->blob_exists(ep, "r", digest, &got, &err),
                   FL_ENOT_FOUND);
  assert_int_equal(count_temps(f->dir), 0);
}

static void test_blob_put_failures(void **state) {
  fixture *f = *state;
  size_t n = 300 * 1024;
  unsigned char *data = pattern(n, 7);
  char digest[FL_DIGEST_STR_MAX], other[FL_DIGEST_STR_MAX], msg[400];
  digest_of(data, n, digest);
  digest_of(data, n - 1, other);

  /* wrong digest: the message names both and the sizes */
  snprintf(msg, sizeof msg,
           "blob %s: content hashes to %s (%zu bytes, expected %zu)", other,
           digest, n, n);
  expect_put_fails(f, other, n, data, n, -1, FL_EDIGEST_MISMATCH, msg);
  /* short source */
  expect_put_fails(f, digest, n, data, n - 10, -1, FL_EDIGEST_MISMATCH,
                   "expected 307200");
  /* long source, with a size that matches nothing */
  expect_put_fails(f, digest, n - 10, data, n, -1, FL_EDIGEST_MISMATCH,
                   "more than the expected");
  /* source error mid-stream: its code and message come through */
  expect_put_fails(f, digest, n, data, n, 200000, FL_ETIMEOUT,
                   "source stalled at byte 200000");
  /* the right bytes still go in afterwards */
  char d[FL_DIGEST_STR_MAX];
  put_blob(f->ep, data, n, d);
  assert_string_equal(d, digest);
  free(data);
}

/* ---- manifests ----------------------------------------------------------- */

static void test_manifest_tag_and_digest(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  image img;
  make_image(ep, "one", &img);
  put_manifest(ep, "v1", img.manifest, img.len, FL_MT_OCI_MANIFEST);
  const char *want[] = {"v1"};
  tags_are(ep, want, 1);

  fl_manifest m = {0};
  assert_int_equal(ep->ops->manifest_get(ep, "r", "v1", &m, &err), FL_OK);
  assert_int_equal(m.len, img.len);
  assert_memory_equal(m.data, img.manifest, img.len);
  assert_string_equal(m.digest, img.digest);
  assert_string_equal(m.media_type, FL_MT_OCI_MANIFEST);
  fl_manifest_clear(&m);
  assert_int_equal(ep->ops->manifest_get(ep, "r", img.digest, &m, &err), FL_OK);
  assert_memory_equal(m.data, img.manifest, img.len);
  assert_string_equal(m.media_type, FL_MT_OCI_MANIFEST);
  fl_manifest_clear(&m);

  fl_descriptor d;
  assert_int_equal(ep->ops->manifest_head(ep, "r", "v1", &d, &err), FL_OK);
  assert_string_equal(d.digest, img.digest);
  assert_int_equal(d.size, img.len);
  assert_string_equal(d.media_type, FL_MT_OCI_MANIFEST);
  memset(&d, 0, sizeof d);
  assert_int_equal(ep->ops->manifest_head(ep, "r", img.digest, &d, &err),
                   FL_OK);
  assert_string_equal(d.digest, img.digest);
  assert_int_equal(d.size, img.len);
  assert_string_equal(d.media_type, FL_MT_OCI_MANIFEST);

  /* index.json holds the descriptor with its ref.name */
  json_t *idx = load_index(f);
  json_t *desc = json_array_get(json_object_get(idx, "manifests"), 0);
  assert_string_equal(json_string_value(json_object_get(desc, "digest")),
                      img.digest);
  assert_int_equal(json_integer_value(json_object_get(desc, "size")), img.len);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(desc, "annotations"),
                                        "org.opencontainers.image.ref.name")),
      "v1");
  json_decref(idx);

  /* missing tag / digest, invalid tag */
  assert_int_equal(ep->ops->manifest_get(ep, "r", "nope", &m, &err),
                   FL_ENOT_FOUND);
  char msg[300];
  snprintf(msg, sizeof msg, "tag nope not found in OCI layout %s", f->layout);
  assert_string_equal(err.msg, msg);
  assert_int_equal(ep->ops->manifest_head(ep, "r", "nope", &d, &err),
                   FL_ENOT_FOUND);
  char absent[FL_DIGEST_STR_MAX];
  digest_of("absent", 6, absent);
  assert_int_equal(ep->ops->manifest_get(ep, "r", absent, &m, &err),
                   FL_ENOT_FOUND);
  assert_int_equal(ep->ops->manifest_head(ep, "r", absent, &d, &err),
                   FL_ENOT_FOUND);
  assert_int_equal(ep->ops->manifest_get(ep, "r", "sha256:zz", &m, &err),
                   FL_EINVALID);
  assert_int_equal(ep->ops->manifest_put(ep, "r", "bad/tag", img.manifest,
                                         img.len, FL_MT_OCI_MANIFEST, &err),
                   FL_EINVALID);
  assert_int_equal(ep->ops->manifest_put(ep, "r", ".dot", img.manifest, img.len,
                                         FL_MT_OCI_MANIFEST, &err),
                   FL_EINVALID);
  assert_int_equal(ep->ops->manifest_put(ep, "r", "v2", "{nope", 5,
                                         FL_MT_OCI_MANIFEST, &err),
                   FL_EINVALID);
  /* declared type must agree with the manifest's own mediaType */
  assert_int_equal(ep->ops->manifest_put(ep, "r", "v2", img.manifest, img.len,
                                         FL_MT_OCI_INDEX, &err),
                   FL_EINVALID);
  /* media type taken from the JSON when none is declared */
  put_manifest(ep, "v3", img.manifest, img.len, NULL);
  assert_int_equal(ep->ops->manifest_head(ep, "r", "v3", &d, &err), FL_OK);
  assert_string_equal(d.media_type, FL_MT_OCI_MANIFEST);
  assert_int_equal(count_temps(f->dir), 0);
}

static void test_retag_preserves_unknown(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  image a, b;
  char path[160];
  make_image(ep, "a", &a);
  make_image(ep, "b", &b);
  /* an index.json written by someone else, with extra fields and an
   * untagged descriptor */
  snprintf(path, sizeof path, "%s/index.json", f->layout);
  char text[1024];
  snprintf(text, sizeof text,
           "{\"schemaVersion\":2,\"x-custom\":{\"k\":[1,2]},\"manifests\":["
           "{\"mediaType\":\"" FL_MT_OCI_MANIFEST
           "\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":\"linux\","
           "\"architecture\":\"arm64\"}}]}",
           b.digest, b.len);
  write_text(path, text);

  put_manifest(ep, "latest", a.manifest, a.len, FL_MT_OCI_MANIFEST);
  put_manifest(ep, "v1", a.manifest, a.len, FL_MT_OCI_MANIFEST);
  put_manifest(ep, "latest", b.manifest, b.len, FL_MT_OCI_MANIFEST);
  const char *want[] = {"latest", "v1"};
  tags_are(ep, want, 2);

  fl_manifest m = {0};
  assert_int_equal(ep->ops->manifest_get(ep, "r", "latest", &m, &err), FL_OK);
  assert_string_equal(m.digest, b.digest);
  fl_manifest_clear(&m);
  assert_int_equal(ep->ops->manifest_get(ep, "r", "v1", &m, &err), FL_OK);
  assert_string_equal(m.digest, a.digest);
  fl_manifest_clear(&m);

  json_t *idx = load_index(f);
  json_t *list = json_object_get(idx, "manifests");
  assert_int_equal(json_array_size(list), 3); /* untagged, latest, v1 */
  assert_non_null(json_object_get(idx, "x-custom"));
  assert_string_equal(json_string_value(json_object_get(idx, "mediaType")),
                      FL_MT_OCI_INDEX);
  json_t *first = json_array_get(list, 0);
  assert_non_null(json_object_get(first, "platform"));
  assert_null(json_object_get(first, "annotations"));
  size_t latest = 0;
  size_t i;
  json_t *d;
  json_array_foreach(list, i, d) {
    const char *name =
        json_string_value(json_object_get(json_object_get(d, "annotations"),
                                          "org.opencontainers.image.ref.name"));
    if (name && !strcmp(name, "latest")) {
      latest++;
      assert_string_equal(json_string_value(json_object_get(d, "digest")),
                          b.digest);
    }
  }
  assert_int_equal(latest, 1);
  json_decref(idx);
}

static void test_untagged_put_and_delete(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  image img;
  uint64_t size;
  make_image(ep, "u", &img);

  /* untagged: the blob only */
  put_manifest(ep, img.digest, img.manifest, img.len, FL_MT_OCI_MANIFEST);
  assert_int_equal(index_count(f), 0);
  assert_int_equal(ep->ops->blob_exists(ep, "r", img.digest, &size, &err),
                   FL_OK);
  assert_int_equal(size, img.len);
  fl_manifest m = {0};
  assert_int_equal(ep->ops->manifest_get(ep, "r", img.digest, &m, &err), FL_OK);
  fl_manifest_clear(&m);
  /* pushed under a digest it does not have */
  assert_int_equal(ep->ops->manifest_put(ep, "r", img.config_digest,
                                         img.manifest, img.len,
                                         FL_MT_OCI_MANIFEST, &err),
                   FL_EDIGEST_MISMATCH);
  assert_non_null(strstr(err.msg, img.digest));

  /* delete a tag */
  put_manifest(ep, "t1", img.manifest, img.len, FL_MT_OCI_MANIFEST);
  put_manifest(ep, "t2", img.manifest, img.len, FL_MT_OCI_MANIFEST);
  assert_int_equal(ep->ops->manifest_delete(ep, "r", "t1", &err), FL_OK);
  const char *want[] = {"t2"};
  tags_are(ep, want, 1);
  assert_int_equal(ep->ops->manifest_get(ep, "r", "t1", &m, &err),
                   FL_ENOT_FOUND);
  assert_int_equal(ep->ops->manifest_delete(ep, "r", "t1", &err),
                   FL_ENOT_FOUND);
  /* delete by digest: every descriptor goes, the blob stays */
  assert_int_equal(ep->ops->manifest_delete(ep, "r", img.digest, &err), FL_OK);
  assert_int_equal(index_count(f), 0);
  tags_are(ep, NULL, 0);
  assert_int_equal(ep->ops->blob_exists(ep, "r", img.digest, &size, &err),
                   FL_OK);
  char absent[FL_DIGEST_STR_MAX];
  digest_of("absent", 6, absent);
  assert_int_equal(ep->ops->manifest_delete(ep, "r", absent, &err),
                   FL_ENOT_FOUND);
}

static void test_corrupt_and_oversized(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  image img;
  char path[300];
  make_image(ep, "c", &img);
  put_manifest(ep, "v1", img.manifest, img.len, FL_MT_OCI_MANIFEST);

  /* flip a byte of the manifest blob */
  snprintf(path, sizeof path, "%s/blobs/sha256/%.64s", f->layout,
           img.digest + 7);
  img.manifest[img.len - 2] = ' ';
  char actual[FL_DIGEST_STR_MAX];
  digest_of(img.manifest, img.len, actual);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fwrite(img.manifest, 1, img.len, fp);
  fclose(fp);
  fl_manifest m = {0};
  assert_int_equal(ep->ops->manifest_get(ep, "r", "v1", &m, &err),
                   FL_EDIGEST_MISMATCH);
  assert_non_null(strstr(err.msg, img.digest));
  assert_non_null(strstr(err.msg, actual));
  assert_null(m.data);
  assert_int_equal(ep->ops->manifest_get(ep, "r", img.digest, &m, &err),
                   FL_EDIGEST_MISMATCH);

  /* an oversized blob is refused before it is read */
  size_t big = FL_MANIFEST_MAX + 1;
  char *data = malloc(big);
  assert_non_null(data);
  memset(data, ' ', big);
  data[0] = '{';
  data[big - 1] = '}';
  char digest[FL_DIGEST_STR_MAX];
  digest_of(data, big, digest);
  snprintf(path, sizeof path, "%s/blobs/sha256/%s", f->layout, digest + 7);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fwrite(data, 1, big, fp);
  fclose(fp);
  assert_int_equal(ep->ops->manifest_get(ep, "r", digest, &m, &err),
                   FL_ETOO_LARGE);
  fl_descriptor d;
  assert_int_equal(ep->ops->manifest_head(ep, "r", digest, &d, &err),
                   FL_ETOO_LARGE);
  assert_int_equal(ep->ops->manifest_put(ep, "r", "big", data, big,
                                         FL_MT_OCI_MANIFEST, &err),
                   FL_ETOO_LARGE);
  free(data);

  /* schema 1 is refused */
  const char *s1 = "{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"y\"}";
  assert_int_equal(
      ep->ops->manifest_put(ep, "r", "old", s1, strlen(s1), NULL, &err),
      FL_EUNSUPPORTED);
  char s1d[FL_DIGEST_STR_MAX];
  put_blob(ep, s1, strlen(s1), s1d);
  assert_int_equal(ep->ops->manifest_get(ep, "r", s1d, &m, &err),
                   FL_EUNSUPPORTED);

  /* a corrupt index.json is an error, not an empty layout */
  snprintf(path, sizeof path, "%s/index.json", f->layout);
  write_text(path, "[1,2");
  fl_strlist l = {0};
  assert_int_equal(ep->ops->tags(ep, "r", &l, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "index.json"));
  const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
  assert_int_equal(ep->ops->manifest_put(ep, "r", "v2", idx, strlen(idx),
                                         FL_MT_OCI_INDEX, &err),
                   FL_EINVALID);
  assert_non_null(strstr(err.msg, "index.json"));
}

/* ---- concurrency --------------------------------------------------------- */

typedef struct worker {
  fl_endpoint *ep;
  const image *img;
  int id;
  int failures;
  char err[FL_ERROR_MSG_MAX];
} worker;

static void *tag_worker(void *arg) {
  worker *w = arg;
  for (int i = 0; i < 25; i++) {
    char tag[32];
    fl_error err = {0};
    snprintf(tag, sizeof tag, "w%d-t%02d", w->id, i);
    if (w->ep->ops->manifest_put(w->ep, "r", tag, w->img->manifest, w->img->len,
                                 FL_MT_OCI_MANIFEST, &err) != FL_OK) {
      w->failures++;
      memcpy(w->err, err.msg, sizeof w->err);
    }
  }
  return NULL;
}

static void run_workers(fixture *f, fl_endpoint *eps[4]) {
  image imgs[2];
  pthread_t th[4];
  worker w[4];
  make_image(f->ep, "p0", &imgs[0]);
  make_image(f->ep, "p1", &imgs[1]);
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){eps[i], &imgs[i % 2], i, 0, ""};
    assert_int_equal(pthread_create(&th[i], NULL, tag_worker, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    if (w[i].failures)
      fail_msg("worker %d: %d failures: %s", i, w[i].failures, w[i].err);
  }
  fl_strlist l = {0};
  fl_error err = {0};
  assert_int_equal(f->ep->ops->tags(f->ep, "r", &l, &err), FL_OK);
  assert_int_equal(l.count, 100);
  assert_string_equal(l.items[0], "w0-t00");
  assert_string_equal(l.items[99], "w3-t24");
  fl_strlist_clear(&l);
  assert_int_equal(index_count(f), 100);
  assert_int_equal(count_temps(f->dir), 0);
}

static void test_concurrent_tags(void **state) {
  fixture *f = *state;
  fl_endpoint *eps[4] = {f->ep, f->ep, f->ep, f->ep};
  run_workers(f, eps);
}

/* Two endpoints on one directory do not share a mutex: the directory flock
 * alone keeps their index.json updates apart. */
static void test_concurrent_two_endpoints(void **state) {
  fixture *f = *state;
  fl_endpoint *other = NULL;
  fl_error err = {0};
  assert_int_equal(fl_oci_layout_open(f->layout, 0, &other, &err), FL_OK);
  fl_endpoint *eps[4] = {f->ep, other, f->ep, other};
  run_workers(f, eps);
  fl_endpoint_free(other);
}

/* ---- referrers ----------------------------------------------------------- */

static void test_referrers(void **state) {
  fixture *f = *state;
  fl_endpoint *ep = f->ep;
  fl_error err = {0};
  image img;
  make_image(ep, "subject", &img);
  put_manifest(ep, "v1", img.manifest, img.len, FL_MT_OCI_MANIFEST);

  char empty[FL_DIGEST_STR_MAX];
  put_blob(ep, "{}", 2, empty);
  char sbom[1024], sig[1024];
  /* an artifact with artifactType, put by digest (untagged) */
  int n1 = snprintf(
      sbom, sizeof sbom,
      "{\"schemaVersion\":2,\"mediaType\":\"" FL_MT_OCI_MANIFEST
      "\",\"artifactType\":\"application/vnd.example.sbom\",\"config\":{"
      "\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"%s\","
      "\"size\":2},\"layers\":[],\"subject\":{\"mediaType\":"
      "\"" FL_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu},"
      "\"annotations\":{\"org.example.k\":\"v\"}}",
      empty, img.digest, img.len);
  /* an older-style artifact typed by its config, put with a tag */
  int n2 =
      snprintf(sig, sizeof sig,
               "{\"schemaVersion\":2,\"mediaType\":\"" FL_MT_OCI_MANIFEST
               "\",\"config\":{\"mediaType\":\"application/vnd.example.sig\","
               "\"digest\":\"%s\",\"size\":2},\"layers\":[],\"subject\":{"
               "\"mediaType\":\"" FL_MT_OCI_MANIFEST "\",\"digest\":\"%s\","
               "\"size\":%zu}}",
               empty, img.digest, img.len);
  char sbom_d[FL_DIGEST_STR_MAX], sig_d[FL_DIGEST_STR_MAX];
  digest_of(sbom, (size_t)n1, sbom_d);
  digest_of(sig, (size_t)n2, sig_d);
  put_manifest(ep, sbom_d, sbom, (size_t)n1, FL_MT_OCI_MANIFEST);
  put_manifest(ep, sbom_d, sbom, (size_t)n1, FL_MT_OCI_MANIFEST); /* twice */
  put_manifest(ep, "sig", sig, (size_t)n2, FL_MT_OCI_MANIFEST);
  put_manifest(ep, "sig2", sig, (size_t)n2, FL_MT_OCI_MANIFEST);
  const char *want_tags[] = {"sig", "sig2", "v1"};
  tags_are(ep, want_tags, 3);

  fl_manifest out = {0};
  assert_int_equal(ep->ops->referrers(ep, "r", img.digest, NULL, &out, &err),
                   FL_OK);
  assert_string_equal(out.media_type, FL_MT_OCI_INDEX);
  json_t *root = json_loadb(out.data, out.len, 0, NULL);
  assert_non_null(root);
  assert_string_equal(json_string_value(json_object_get(root, "mediaType")),
                      FL_MT_OCI_INDEX);
  json_t *list = json_object_get(root, "manifests");
  assert_int_equal(json_array_size(list), 2);
  int seen = 0;
  size_t i;
  json_t *d;
  json_array_foreach(list, i, d) {
    const char *dg = json_string_value(json_object_get(d, "digest"));
    const char *at = json_string_value(json_object_get(d, "artifactType"));
    json_int_t size = json_integer_value(json_object_get(d, "size"));
    if (!strcmp(dg, sbom_d)) {
      seen |= 1;
      assert_string_equal(at, "application/vnd.example.sbom");
      assert_int_equal(size, n1);
      assert_string_equal(
          json_string_value(json_object_get(json_object_get(d, "annotations"),
                                            "org.example.k")),
          "v");
    } else {
      assert_string_equal(dg, sig_d);
      seen |= 2;
      assert_string_equal(at, "application/vnd.example.sig");
      assert_int_equal(size, n2);
    }
  }
  assert_int_equal(seen, 3);
  json_decref(root);
  fl_manifest_clear(&out);

  assert_int_equal(ep->ops->referrers(ep, "r", img.digest,
                                      "application/vnd.example.sig", &out,
                                      &err),
                   FL_OK);
  root = json_loadb(out.data, out.len, 0, NULL);
  list = json_object_get(root, "manifests");
  assert_int_equal(json_array_size(list), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(list, 0), "digest")),
      sig_d);
  json_decref(root);
  fl_manifest_clear(&out);

  /* no referrers: an empty list */
  assert_int_equal(ep->ops->referrers(ep, "r", sig_d, NULL, &out, &err), FL_OK);
  root = json_loadb(out.data, out.len, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(root, "manifests")), 0);
  json_decref(root);
  char check[FL_DIGEST_STR_MAX];
  digest_of(out.data, out.len, check);
  assert_string_equal(out.digest, check);
  fl_manifest_clear(&out);
  assert_int_equal(ep->ops->referrers(ep, "r", "sha256:1", NULL, &out, &err),
                   FL_EINVALID);
}

/* ---- skopeo interoperability --------------------------------------------- */

/* skopeo on $PATH? */
static int have_skopeo(void) {
  const char *path = getenv("PATH");
  char dir[1024], exe[1100];
  while (path && *path) {
    size_t n = strcspn(path, ":");
    if (n > 0 && n < sizeof dir) {
      memcpy(dir, path, n);
      dir[n] = '\0';
      snprintf(exe, sizeof exe, "%s/skopeo", dir);
      if (access(exe, X_OK) == 0)
        return 1;
    }
    path += n + (path[n] == ':');
  }
  return 0;
}

/* Run a shell command (the paths in it are our own temp dirs). */
static int run(const char *cmd) {
  int rc = system(cmd); // NOLINT(cert-env33-c): skopeo is the point
  if (rc != 0)
    fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

static void test_skopeo_reads_ours(void **state) {
  fixture *f = *state;
  char cmd[1024], raw[160], path[300];
  if (!have_skopeo())
    skip();
  image img;
  make_image(f->ep, "skopeo", &img);
  put_manifest(f->ep, "v1", img.manifest, img.len, FL_MT_OCI_MANIFEST);
  put_manifest(f->ep, "other", img.manifest, img.len, FL_MT_OCI_MANIFEST);

  snprintf(raw, sizeof raw, "%s/raw.json", f->dir);
  snprintf(cmd, sizeof cmd, "skopeo inspect --raw oci:%s:v1 > %s", f->layout,
           raw);
  assert_int_equal(run(cmd), 0);
  FILE *fp = fopen(raw, "r");
  assert_non_null(fp);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, fp);
  fclose(fp);
  assert_int_equal(n, img.len);
  assert_memory_equal(buf, img.manifest, n);

  /* the config is read too */
  snprintf(cmd, sizeof cmd, "skopeo inspect oci:%s:v1 >/dev/null", f->layout);
  assert_int_equal(run(cmd), 0);
  snprintf(cmd, sizeof cmd, "skopeo copy -q oci:%s:v1 dir:%s/out >/dev/null",
           f->layout, f->dir);
  assert_int_equal(run(cmd), 0);
  snprintf(path, sizeof path, "%s/out/%.64s", f->dir, img.layer_digest + 7);
  assert_int_equal(access(path, R_OK), 0);
}

static void test_we_read_skopeos(void **state) {
  fixture *f = *state;
  char cmd[1024], path[160];
  if (!have_skopeo())
    skip();
  image img;
  make_image(f->ep, "roundtrip", &img);
  put_manifest(f->ep, "v1", img.manifest, img.len, FL_MT_OCI_MANIFEST);
  /* skopeo writes a fresh layout, and adds a tag to ours */
  snprintf(cmd, sizeof cmd,
           "skopeo copy -q oci:%s:v1 oci:%s/theirs:t9 >/dev/null", f->layout,
           f->dir);
  assert_int_equal(run(cmd), 0);
  snprintf(cmd, sizeof cmd, "skopeo copy -q oci:%s:v1 oci:%s:v2 >/dev/null",
           f->layout, f->layout);
  assert_int_equal(run(cmd), 0);
  const char *want[] = {"v1", "v2"};
  tags_are(f->ep, want, 2);

  fl_endpoint *ep = NULL;
  fl_error err = {0};
  snprintf(path, sizeof path, "%s/theirs", f->dir);
  assert_int_equal(fl_oci_layout_open(path, 0, &ep, &err), FL_OK);
  assert_int_equal(ep->ops->ping(ep, &err), FL_OK);
  const char *theirs[] = {"t9"};
  tags_are(ep, theirs, 1);
  fl_manifest m = {0};
  assert_int_equal(ep->ops->manifest_get(ep, "r", "t9", &m, &err), FL_OK);
  assert_string_equal(m.digest, img.digest);
  fl_manifest_clear(&m);
  mem_sink s = {0};
  fl_sink sink = {sink_write, &s};
  assert_int_equal(ep->ops->blob_get(ep, "r", img.layer_digest, 0, &sink, &err),
                   FL_OK);
  char got[FL_DIGEST_STR_MAX];
  digest_of(s.data, s.len, got);
  assert_string_equal(got, img.layer_digest);
  free(s.data);
  /* and skopeo reads a tag we add to its layout */
  put_manifest(ep, "mine", img.manifest, img.len, FL_MT_OCI_MANIFEST);
  fl_endpoint_free(ep);
  snprintf(cmd, sizeof cmd, "skopeo inspect --raw oci:%s:mine >/dev/null",
           path);
  assert_int_equal(run(cmd), 0);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_open_errors),
      T(test_create_and_ping),
      T(test_blob_roundtrip),
      T(test_blob_invalid_digests),
      T(test_blob_put_failures),
      T(test_manifest_tag_and_digest),
      T(test_retag_preserves_unknown),
      T(test_untagged_put_and_delete),
      T(test_corrupt_and_oversized),
      T(test_concurrent_tags),
      T(test_concurrent_two_endpoints),
      T(test_referrers),
      T(test_skopeo_reads_ours),
      T(test_we_read_skopeos),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
