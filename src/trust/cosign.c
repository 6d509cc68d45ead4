/*
 * cosign.c - public keys (PEM, OpenSSL EVP) and the check of one cosign
 * signature over a simple-signing payload (see cosign.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>

#include "trust/cosign.h"

#define KEY_FILE_MAX (64 * 1024)
#define SIG_MAX 2048 /* RSA-16384 is 2 KiB; ECDSA and Ed25519 far less */

typedef struct trust_key {
  EVP_PKEY *pkey;
  char *name;
  char kind[32];
  int pure; /* Ed25519: signs the message itself, no separate digest */
} trust_key;

struct fl_trust_keys {
  trust_key keys[FL_TRUST_KEYS_MAX];
  size_t n;
  atomic_int refs; /* owners: the creator and each fl_trust_keys_ref */
};

fl_trust_keys *fl_trust_keys_new(void) {
  fl_trust_keys *k = calloc(1, sizeof(fl_trust_keys));
  if (k)
    atomic_init(&k->refs, 1);
  return k;
}

fl_trust_keys *fl_trust_keys_ref(fl_trust_keys *k) {
  atomic_fetch_add(&k->refs, 1);
  return k;
}

void fl_trust_keys_free(fl_trust_keys *k) {
  if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
    return;
  for (size_t i = 0; i < k->n; i++) {
    EVP_PKEY_free(k->keys[i].pkey);
    free(k->keys[i].name);
  }
  free(k);
}

size_t fl_trust_keys_count(const fl_trust_keys *k) { return k ? k->n : 0; }

const char *fl_trust_key_name(const fl_trust_keys *k, size_t i) {
  return i < k->n ? k->keys[i].name : NULL;
}

const char *fl_trust_key_kind(const fl_trust_keys *k, size_t i) {
  return i < k->n ? k->keys[i].kind : NULL;
}

/* The kind of a key, or FL_EUNSUPPORTED for one cosign cannot sign with. */
static fl_code key_kind(EVP_PKEY *pkey, trust_key *tk, const char *name,
                        fl_error *err) {
  switch (EVP_PKEY_get_base_id(pkey)) {
  case EVP_PKEY_EC: {
    char group[64] = "";
    size_t glen = 0;
    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                   sizeof group, &glen);
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
      snprintf(tk->kind, sizeof tk->kind, "ecdsa-p256");
    else
      snprintf(tk->kind, sizeof tk->kind, "ecdsa-%.20s", group);
    return FL_OK;
  }
  case EVP_PKEY_ED25519:
    snprintf(tk->kind, sizeof tk->kind, "ed25519");
    tk->pure = 1;
    return FL_OK;
  case EVP_PKEY_RSA:
    snprintf(tk->kind, sizeof tk->kind, "rsa-%d", EVP_PKEY_get_bits(pkey));
    return FL_OK;
  default:
    return fl_error_set(err, FL_EUNSUPPORTED,
                        "key %s: unsupported key type %s (use an ECDSA, "
                        "Ed25519 or RSA public key)",
                        name, EVP_PKEY_get0_type_name(pkey));
  }
}

fl_code fl_trust_keys_add_pem(fl_trust_keys *k, const char *name,
                              const char *pem, size_t len, fl_error *err) {
  if (k->n >= FL_TRUST_KEYS_MAX)
    return fl_error_set(err, FL_EINVALID, "too many keys (at most %d)",
                        FL_TRUST_KEYS_MAX);
  if (!strstr(pem, "-----BEGIN "))
    return fl_error_set(err, FL_EINVALID,
                        "key %s: not a PEM public key (no -----BEGIN line)",
                        name);
  if (strstr(pem, "PRIVATE KEY-----"))
    return fl_error_set(err, FL_EINVALID,
                        "key %s: is a private key; give the public key "
                        "(cosign.pub)",
                        name);
  if (strstr(pem, "-----BEGIN CERTIFICATE"))
    return fl_error_set(err, FL_EUNSUPPORTED,
                        "key %s: is a certificate; certificate-based "
                        "(keyless) verification is not supported, give a "
                        "public key",
                        name);
  EVP_PKEY *pkey = NULL;
  OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(
      &pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
  const unsigned char *p = (const unsigned char *)pem;
  size_t left = len;
  int ok = dctx && OSSL_DECODER_from_data(dctx, &p, &left) == 1 && pkey;
  OSSL_DECODER_CTX_free(dctx);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return fl_error_set(err, FL_EINVALID,
                        "key %s: cannot read the PEM public key", name);
  }
  trust_key *tk = &k->keys[k->n];
  memset(tk, 0, sizeof *tk);
  fl_code rc = key_kind(pkey, tk, name, err);
  if (rc == FL_OK && !(tk->name = strdup(name)))
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
  if (rc != FL_OK) {
    EVP_PKEY_free(pkey);
    return rc;
  }
  tk->pkey = pkey;
  k->n++;
  return FL_OK;
}

fl_code fl_trust_keys_add_file(fl_trust_keys *k, const char *path,
                               fl_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return fl_error_set(err, errno == ENOENT ? FL_ENOT_FOUND : FL_EIO,
                        "key %s: %s", path, strerror(errno));
  char *buf = malloc(KEY_FILE_MAX + 1);
  if (!buf) {
    fclose(f);
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  }
  size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
  int bad = ferror(f);
  fclose(f);
  fl_code rc;
  if (bad)
    rc = fl_error_set(err, FL_EIO, "key %s: read error", path);
  else if (n > KEY_FILE_MAX)
    rc = fl_error_set(err, FL_EINVALID, "key %s: over %d bytes, not a key",
                      path, KEY_FILE_MAX);
  else {
    buf[n] = '\0';
    rc = fl_trust_keys_add_pem(k, path, buf, n, err);
  }
  free(buf);
  return rc;
}

/* ---- one signature ------------------------------------------------------ */

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

/* Standard (or URL-safe) base64, padding optional. -1 when malformed. */
static long b64_decode(const char *s, unsigned char *out, size_t cap) {
  size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  const char *end = s + strlen(s);
  while (end > s && end[-1] == '=')
    end--;
  for (const char *c = s; c < end; c++) {
    int v = b64_value((unsigned char)*c);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n >= cap)
        return -1;
      out[n++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (bits >= 6 || (end - s) % 4 == 1)
    return -1;
  return (long)n;
}

static int key_verifies(const trust_key *tk, const unsigned char *sig,
                        size_t siglen, const void *payload, size_t len) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return 0;
  int ok = EVP_DigestVerifyInit(ctx, NULL, tk->pure ? NULL : EVP_sha256(), NULL,
                                tk->pkey) == 1 &&
           EVP_DigestVerify(ctx, sig, siglen, payload, len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

/* The digest a payload signs, or NULL with why set. */
static const char *payload_digest(json_t *root, char *why, size_t why_len) {
  json_t *critical = json_object_get(root, "critical");
  const char *type = json_string_value(json_object_get(critical, "type"));
  const char *digest = json_string_value(json_object_get(
      json_object_get(critical, "image"), "docker-manifest-digest"));
  if (!json_is_object(critical) || !digest) {
    snprintf(why, why_len,
             "malformed signature: the payload has no "
             "critical.image.docker-manifest-digest");
    return NULL;
  }
  if (!type || strcmp(type, FL_COSIGN_PAYLOAD_TYPE) != 0) {
    snprintf(why, why_len,
             "malformed signature: payload type is \"%.80s\", not \"%s\"",
             type ? type : "", FL_COSIGN_PAYLOAD_TYPE);
    return NULL;
  }
  return digest;
}

fl_sig_status fl_cosign_check(const fl_trust_keys *k, const void *payload,
                              size_t len, const char *sig_b64,
                              const char *digest, unsigned long long *matched,
                              char *why, size_t why_len) {
  unsigned char sig[SIG_MAX];
  *matched = 0;
  why[0] = '\0';
  long siglen = sig_b64 ? b64_decode(sig_b64, sig, sizeof sig) : -1;
  if (siglen <= 0) {
    snprintf(why, why_len,
             "malformed signature: the %s annotation is not "
             "base64",
             FL_COSIGN_SIG_ANNOTATION);
    return FL_SIG_MALFORMED;
  }
  if (len > FL_TRUST_PAYLOAD_MAX) {
    snprintf(why, why_len, "malformed signature: payload of %zu bytes", len);
    return FL_SIG_MALFORMED;
  }
  /* The signature first: an unverified payload says nothing, whatever
   * digest it names. */
  for (size_t i = 0; i < k->n; i++)
    if (key_verifies(&k->keys[i], sig, (size_t)siglen, payload, len))
      *matched |= 1ull << i;
  if (!*matched) {
    snprintf(why, why_len,
             "signature does not verify with %s (wrong key, or the payload "
             "was changed)",
             k->n == 1 ? "the key" : "any of the keys");
    return FL_SIG_WRONG_KEY;
  }
  json_t *root = json_loadb(payload, len, 0, NULL);
  const char *signed_digest = payload_digest(root, why, why_len);
  fl_sig_status st = FL_SIG_VALID;
  if (!signed_digest) {
    st = FL_SIG_MALFORMED;
  } else if (strcmp(signed_digest, digest) != 0) {
    snprintf(why, why_len,
             "digest mismatch: the signature covers %.80s, the "
             "image is %.80s",
             signed_digest, digest);
    st = FL_SIG_DIGEST_MISMATCH;
  }
  json_decref(root);
  if (st != FL_SIG_VALID)
    *matched = 0;
  return st;
}
