/*
 * digest.c - SHA-256 / SHA-512 content digests through OpenSSL EVP.
 *
 * Digests are the identity of every blob and manifest, so this file is on
 * the hot path of every copy: the hasher is updated with each chunk as it
 * streams past and never needs the whole content in memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "freightliner.h"
#include "registry/reference.h"

struct fl_hasher {
  EVP_MD_CTX *ctx;
  fl_digest_alg alg;
  int finished;
};

static const struct {
  const char *name;
  size_t hex_len;
} algs[] = {
    [FL_SHA256] = {"sha256", 64},
    [FL_SHA512] = {"sha512", 128},
};

#define FILE_CHUNK (128 * 1024)

static const EVP_MD *alg_md(fl_digest_alg alg) {
  return alg == FL_SHA512 ? EVP_sha512() : EVP_sha256();
}

fl_code fl_digest_alg_from_name(const char *name, size_t len,
                                fl_digest_alg *alg) {
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0) {
      *alg = (fl_digest_alg)i;
      return FL_OK;
    }
  }
  return FL_EUNSUPPORTED;
}

const char *fl_digest_alg_name(fl_digest_alg alg) { return algs[alg].name; }

size_t fl_digest_hex_len(fl_digest_alg alg) { return algs[alg].hex_len; }

fl_hasher *fl_hasher_new(fl_digest_alg alg) {
  fl_hasher *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->alg = alg;
  h->ctx = EVP_MD_CTX_new();
  if (!h->ctx || fl_hasher_reset(h) != FL_OK) {
    fl_hasher_free(h);
    return NULL;
  }
  return h;
}

fl_code fl_hasher_reset(fl_hasher *h) {
  h->finished = 0;
  return EVP_DigestInit_ex(h->ctx, alg_md(h->alg), NULL) == 1 ? FL_OK
                                                              : FL_ENOMEM;
}

fl_code fl_hasher_copy(fl_hasher *dst, const fl_hasher *src) {
  if (src->finished || dst->alg != src->alg)
    return FL_EINVALID;
  if (EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) != 1)
    return FL_ENOMEM;
  dst->finished = 0;
  return FL_OK;
}

fl_code fl_hasher_update(fl_hasher *h, const void *data, size_t len) {
  if (h->finished)
    return FL_EINVALID;
  return EVP_DigestUpdate(h->ctx, data, len) == 1 ? FL_OK : FL_ENOMEM;
}

static void to_hex(const unsigned char *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = '\0';
}

fl_code fl_hasher_final(fl_hasher *h, char out[FL_DIGEST_STR_MAX]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (h->finished)
    return FL_EINVALID;
  if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1)
    return FL_ENOMEM;
  h->finished = 1;
  size_t prefix = strlen(algs[h->alg].name);
  memcpy(out, algs[h->alg].name, prefix);
  out[prefix] = ':';
  to_hex(md, n, out + prefix + 1);
  return FL_OK;
}

void fl_hasher_free(fl_hasher *h) {
  if (!h)
    return;
  EVP_MD_CTX_free(h->ctx);
  free(h);
}

fl_code fl_digest_buffer(fl_digest_alg alg, const void *data, size_t len,
                         char out[FL_DIGEST_STR_MAX]) {
  fl_hasher *h = fl_hasher_new(alg);
  if (!h)
    return FL_ENOMEM;
  fl_code rc = fl_hasher_update(h, data, len);
  if (rc == FL_OK)
    rc = fl_hasher_final(h, out);
  fl_hasher_free(h);
  return rc;
}

fl_code fl_digest_file(fl_digest_alg alg, const char *path,
                       char out[FL_DIGEST_STR_MAX], uint64_t *size,
                       fl_error *err) {
  fl_code rc = FL_OK;
  unsigned char *buf = NULL;
  fl_hasher *h = NULL;
  uint64_t total = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fl_error_set(err, errno == ENOENT ? FL_ENOT_FOUND : FL_EIO,
                        "cannot open %s: %s", path, strerror(errno));
  buf = malloc(FILE_CHUNK);
  h = fl_hasher_new(alg);
  if (!buf || !h) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory hashing %s", path);
    goto out;
  }
  for (;;) {
    ssize_t n = read(fd, buf, FILE_CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = fl_error_set(err, FL_EIO, "cannot read %s: %s", path,
                        strerror(errno));
      goto out;
    }
    if (n == 0)
      break;
    total += (uint64_t)n;
    if ((rc = fl_hasher_update(h, buf, (size_t)n)) != FL_OK) {
      fl_error_set(err, rc, "hashing %s failed", path);
      goto out;
    }
  }
  if ((rc = fl_hasher_final(h, out)) != FL_OK) {
    fl_error_set(err, rc, "hashing %s failed", path);
    goto out;
  }
  if (size)
    *size = total;
out:
  fl_hasher_free(h);
  free(buf);
  close(fd);
  return rc;
}

/* The digest grammar lives with the rest of the reference grammar. */
fl_code fl_digest_parse(const char *s, fl_digest_alg *alg, fl_error *err) {
  return fl_ref_check_digest(s, alg, err);
}
