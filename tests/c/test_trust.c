/*
 * test_trust.c - cosign signature checks (src/trust/cosign.c): real
 * cosign-produced signatures and keys (tests/data/cosign, see SOURCE.md),
 * and ECDSA P-256, Ed25519 and RSA keys made here with OpenSSL, signing as
 * cosign does; every way a signature is refused; key loading errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "trust/cosign.h"

static char fixtures[512];

static char *slurp(const char *rel, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", fixtures, rel);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = malloc(1 << 20);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static void manifest_digest(const char *dir, char out[FL_DIGEST_STR_MAX]) {
  char rel[256];
  size_t len;
  snprintf(rel, sizeof rel, "%s/manifest.json", dir);
  char *m = slurp(rel, &len);
  assert_int_equal(fl_digest_buffer(FL_SHA256, m, len, out), FL_OK);
  free(m);
}

/* The base64 signature from a fixture's annotations. */
static char *fixture_sig(const char *dir) {
  char rel[256];
  snprintf(rel, sizeof rel, "%s/annotations-1.json", dir);
  char *a = slurp(rel, NULL);
  json_t *root = json_loads(a, 0, NULL);
  assert_non_null(root);
  char *sig = strdup(
      json_string_value(json_object_get(root, FL_COSIGN_SIG_ANNOTATION)));
  json_decref(root);
  free(a);
  return sig;
}

static fl_trust_keys *keys_from(const char *const *files, size_t n) {
  fl_trust_keys *k = fl_trust_keys_new();
  assert_non_null(k);
  for (size_t i = 0; i < n; i++) {
    char path[1024];
    fl_error err;
    snprintf(path, sizeof path, "%s/%s", fixtures, files[i]);
    assert_int_equal(fl_trust_keys_add_file(k, path, &err), FL_OK);
  }
  return k;
}

/* Check fixture `dir` against the image digest of manifest `mdir`. */
static fl_sig_status check_fixture(const fl_trust_keys *k, const char *dir,
                                   const char *mdir, unsigned long long *m,
                                   char *why) {
  char rel[256], digest[FL_DIGEST_STR_MAX];
  size_t len;
  snprintf(rel, sizeof rel, "%s/payload-1.json", dir);
  char *payload = slurp(rel, &len);
  char *sig = fixture_sig(dir);
  manifest_digest(mdir, digest);
  fl_sig_status st = fl_cosign_check(k, payload, len, sig, digest, m, why, 240);
  free(payload);
  free(sig);
  return st;
}

/* ---- real cosign signatures --------------------------------------------- */

static void test_cosign_valid(void **state) {
  (void)state;
  const char *files[] = {"cosign2.pub", "cosign.pub"};
  fl_trust_keys *k = keys_from(files, 2);
  assert_string_equal(fl_trust_key_kind(k, 0), "ecdsa-p256");
  unsigned long long m;
  char why[240];
  assert_int_equal(check_fixture(k, "valid", "valid", &m, why), FL_SIG_VALID);
  assert_int_equal(m, 2); /* the second key, cosign.pub */
  assert_int_equal(check_fixture(k, "key-rekor", "key-rekor", &m, why),
                   FL_SIG_VALID);
  assert_int_equal(m, 1); /* cosign2.pub signed this one */
  fl_trust_keys_free(k);
}

static void test_cosign_wrong_key(void **state) {
  (void)state;
  const char *files[] = {"cosign2.pub"};
  fl_trust_keys *k = keys_from(files, 1);
  unsigned long long m;
  char why[240];
  assert_int_equal(check_fixture(k, "valid", "valid", &m, why),
                   FL_SIG_WRONG_KEY);
  assert_non_null(strstr(why, "does not verify"));
  fl_trust_keys_free(k);
  const char *one[] = {"cosign.pub"};
  k = keys_from(one, 1);
  assert_int_equal(check_fixture(k, "key-rekor", "key-rekor", &m, why),
                   FL_SIG_WRONG_KEY);
  assert_non_null(strstr(why, "does not verify"));
  fl_trust_keys_free(k);
  /* signed by a key nobody here has */
  const char *ours[] = {"cosign.pub"};
  k = keys_from(ours, 1);
  assert_int_equal(check_fixture(k, "unknown-key", "unknown-key", &m, why),
                   FL_SIG_WRONG_KEY);
  /* keyless (Fulcio certificate): no public key of ours verifies it */
  assert_int_equal(check_fixture(k, "keyless", "keyless", &m, why),
                   FL_SIG_WRONG_KEY);
  fl_trust_keys_free(k);
}

static void test_cosign_digest_mismatch(void **state) {
  (void)state;
  const char *files[] = {"cosign.pub"};
  fl_trust_keys *k = keys_from(files, 1);
  unsigned long long m = 7;
  char why[240];
  assert_int_equal(check_fixture(k, "valid", "modified-manifest", &m, why),
                   FL_SIG_DIGEST_MISMATCH);
  assert_int_equal(m, 0);
  assert_non_null(strstr(why, "digest mismatch"));
  assert_non_null(strstr(why, "sha256:634a8f35"));
  fl_trust_keys_free(k);
}

static void test_cosign_tampered(void **state) {
  (void)state;
  const char *files[] = {"cosign.pub"};
  fl_trust_keys *k = keys_from(files, 1);
  size_t len;
  char *payload = slurp("valid/payload-1.json", &len);
  char *sig = fixture_sig("valid");
  char digest[FL_DIGEST_STR_MAX], why[240];
  unsigned long long m;
  manifest_digest("valid", digest);
  /* one byte of the payload changed: the signature no longer verifies */
  char *at = strstr(payload, "single-sample");
  assert_non_null(at);
  at[0] = 'S';
  assert_int_equal(fl_cosign_check(k, payload, len, sig, digest, &m, why, 240),
                   FL_SIG_WRONG_KEY);
  at[0] = 's';
  /* a signature that is not base64, or truncated DER */
  assert_int_equal(
      fl_cosign_check(k, payload, len, "not*base64!", digest, &m, why, 240),
      FL_SIG_MALFORMED);
  assert_non_null(strstr(why, "malformed"));
  sig[20] = '\0';
  assert_int_equal(fl_cosign_check(k, payload, len, sig, digest, &m, why, 240),
                   FL_SIG_WRONG_KEY);
  assert_int_equal(fl_cosign_check(k, payload, len, NULL, digest, &m, why, 240),
                   FL_SIG_MALFORMED);
  free(sig);
  free(payload);
  fl_trust_keys_free(k);
}

/* ---- keys made here, signing as cosign does ------------------------------ */

static char *pubkey_pem(EVP_PKEY *pkey) {
  BIO *b = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(b, pkey), 1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *pem = strndup(data, (size_t)n);
  BIO_free(b);
  return pem;
}

static char *sign_b64(EVP_PKEY *pkey, int pure, const char *msg) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char sig[1024];
  size_t siglen = sizeof sig;
  assert_int_equal(
      EVP_DigestSignInit(ctx, NULL, pure ? NULL : EVP_sha256(), NULL, pkey), 1);
  assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg,
                                  strlen(msg)),
                   1);
  EVP_MD_CTX_free(ctx);
  char *b64 = malloc(4 * ((siglen + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
  return b64;
}

static void check_generated(EVP_PKEY *pkey, int pure, const char *kind) {
  const char *digest = "sha256:"
                       "1111111111111111111111111111111111111111111111111111111"
                       "111111111";
  char payload[512], why[240];
  snprintf(payload, sizeof payload,
           "{\"critical\":{\"identity\":{\"docker-reference\":\"r/x\"},"
           "\"image\":{\"docker-manifest-digest\":\"%s\"},\"type\":\"cosign "
           "container image signature\"},\"optional\":null}",
           digest);
  char *pem = pubkey_pem(pkey);
  fl_trust_keys *k = fl_trust_keys_new();
  fl_error err;
  assert_int_equal(fl_trust_keys_add_pem(k, "gen", pem, strlen(pem), &err),
                   FL_OK);
  assert_string_equal(fl_trust_key_kind(k, 0), kind);
  char *sig = sign_b64(pkey, pure, payload);
  unsigned long long m;
  assert_int_equal(fl_cosign_check(k, payload, strlen(payload), sig, digest, &m,
                                   why, sizeof why),
                   FL_SIG_VALID);
  assert_int_equal(m, 1);
  /* wrong payload type */
  char *bad = strdup(payload);
  memcpy(strstr(bad, "cosign container"), "COSIGN", 6);
  char *sig2 = sign_b64(pkey, pure, bad);
  assert_int_equal(
      fl_cosign_check(k, bad, strlen(bad), sig2, digest, &m, why, sizeof why),
      FL_SIG_MALFORMED);
  /* not JSON at all, but signed */
  char *sig3 = sign_b64(pkey, pure, "hello");
  assert_int_equal(
      fl_cosign_check(k, "hello", 5, sig3, digest, &m, why, sizeof why),
      FL_SIG_MALFORMED);
  free(sig3);
  free(sig2);
  free(bad);
  free(sig);
  free(pem);
  fl_trust_keys_free(k);
}

static void test_generated_keys(void **state) {
  (void)state;
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  assert_non_null(ec);
  assert_non_null(ed);
  assert_non_null(rsa);
  check_generated(ec, 0, "ecdsa-p256");
  check_generated(ed, 1, "ed25519");
  check_generated(rsa, 0, "rsa-2048");
  EVP_PKEY_free(ec);
  EVP_PKEY_free(ed);
  EVP_PKEY_free(rsa);
}

static void test_key_errors(void **state) {
  (void)state;
  fl_trust_keys *k = fl_trust_keys_new();
  fl_error err;
  assert_int_equal(fl_trust_keys_add_file(k, "/nonexistent/cosign.pub", &err),
                   FL_ENOT_FOUND);
  assert_non_null(strstr(err.msg, "/nonexistent/cosign.pub"));
  const char *garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC "
                        "KEY-----\n";
  assert_int_equal(
      fl_trust_keys_add_pem(k, "g.pub", garbage, strlen(garbage), &err),
      FL_EINVALID);
  assert_int_equal(fl_trust_keys_add_pem(k, "x", "hello", 5, &err),
                   FL_EINVALID);
  const char *priv = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC "
                     "PRIVATE KEY-----\n";
  assert_int_equal(
      fl_trust_keys_add_pem(k, "cosign.key", priv, strlen(priv), &err),
      FL_EINVALID);
  assert_non_null(strstr(err.msg, "private key"));
  const char *cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END "
                     "CERTIFICATE-----\n";
  assert_int_equal(fl_trust_keys_add_pem(k, "c.pem", cert, strlen(cert), &err),
                   FL_EUNSUPPORTED);
  assert_non_null(strstr(err.msg, "keyless"));
  assert_int_equal(fl_trust_keys_count(k), 0);
  /* PKCS#1 RSA public key, as cosign's own test data has it */
  char path[1024];
  snprintf(path, sizeof path, "%s/rsa-pkcs1.pub", fixtures);
  assert_int_equal(fl_trust_keys_add_file(k, path, &err), FL_OK);
  assert_string_equal(fl_trust_key_kind(k, 0), "rsa-4096");
  fl_trust_keys_free(k);
}

int main(void) {
  const char *data = getenv("FL_TEST_DATA");
  snprintf(fixtures, sizeof fixtures, "%s/../../data/cosign",
           data ? data : "tests/c/data");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cosign_valid),
      cmocka_unit_test(test_cosign_wrong_key),
      cmocka_unit_test(test_cosign_digest_mismatch),
      cmocka_unit_test(test_cosign_tampered),
      cmocka_unit_test(test_generated_keys),
      cmocka_unit_test(test_key_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
