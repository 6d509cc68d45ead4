/*
 * test_digest.c - SHA-256/512 against published vectors (FIPS 180-4 examples,
 * NIST CAVP), streaming equivalence, file digests and digest parsing.
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

#include "freightliner.h"

typedef struct vector {
  fl_digest_alg alg;
  const char *input;
  const char *want;
} vector;

static const vector vectors[] = {
    {FL_SHA256, "",
     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {FL_SHA256, "abc",
     "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {FL_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {FL_SHA512, "abc",
     "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
    {FL_SHA512, "",
     "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
     "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
};

static void test_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    char out[FL_DIGEST_STR_MAX];
    assert_int_equal(fl_digest_buffer(vectors[i].alg, vectors[i].input,
                                      strlen(vectors[i].input), out),
                     FL_OK);
    assert_string_equal(out, vectors[i].want);
  }
}

/* One million 'a' characters, fed in uneven pieces (FIPS 180-2 vector). */
static void test_streaming_million_a(void **state) {
  (void)state;
  char chunk[997];
  memset(chunk, 'a', sizeof chunk);
  fl_hasher *h = fl_hasher_new(FL_SHA256);
  assert_non_null(h);
  size_t left = 1000000;
  while (left) {
    size_t n = left < sizeof chunk ? left : sizeof chunk;
    assert_int_equal(fl_hasher_update(h, chunk, n), FL_OK);
    left -= n;
  }
  char out[FL_DIGEST_STR_MAX];
  assert_int_equal(fl_hasher_final(h, out), FL_OK);
  assert_string_equal(
      out,
      "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  /* final twice and update after final are refused */
  assert_int_equal(fl_hasher_final(h, out), FL_EINVALID);
  assert_int_equal(fl_hasher_update(h, "x", 1), FL_EINVALID);
  assert_int_equal(fl_hasher_reset(h), FL_OK);
  assert_int_equal(fl_hasher_update(h, "abc", 3), FL_OK);
  assert_int_equal(fl_hasher_final(h, out), FL_OK);
  assert_string_equal(out, vectors[1].want);
  fl_hasher_free(h);
}

static void test_file(void **state) {
  (void)state;
  char path[] = "/tmp/fl-digest-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  /* larger than the internal read chunk */
  char *buf = malloc(300000);
  assert_non_null(buf);
  for (size_t i = 0; i < 300000; i++)
    buf[i] = (char)(i * 7);
  assert_int_equal(write(fd, buf, 300000), 300000);
  close(fd);
  char from_file[FL_DIGEST_STR_MAX], from_buf[FL_DIGEST_STR_MAX];
  uint64_t size = 0;
  fl_error err;
  assert_int_equal(fl_digest_file(FL_SHA256, path, from_file, &size, &err),
                   FL_OK);
  assert_int_equal(size, 300000);
  assert_int_equal(fl_digest_buffer(FL_SHA256, buf, 300000, from_buf), FL_OK);
  assert_string_equal(from_file, from_buf);
  free(buf);
  unlink(path);
  assert_int_equal(fl_digest_file(FL_SHA256, path, from_file, &size, &err),
                   FL_ENOT_FOUND);
  assert_non_null(strstr(err.msg, path));
}

static void test_parse(void **state) {
  (void)state;
  fl_digest_alg alg;
  fl_error err;
  assert_int_equal(fl_digest_parse(vectors[0].want, &alg, &err), FL_OK);
  assert_int_equal(alg, FL_SHA256);
  assert_int_equal(fl_digest_parse(vectors[3].want, &alg, &err), FL_OK);
  assert_int_equal(alg, FL_SHA512);

  static const struct {
    const char *in;
    fl_code code;
    const char *msg;
  } bad[] = {
      {"", FL_EINVALID, "expected algorithm:hex"},
      {"sha256", FL_EINVALID, "expected algorithm:hex"},
      {":abc", FL_EINVALID, "expected algorithm:hex"},
      {"md5:d41d8cd98f00b204e9800998ecf8427e", FL_EUNSUPPORTED,
       "unsupported digest algorithm \"md5\" (supported: sha256, sha512)"},
      {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
       FL_EINVALID, "hex must be lower-case (at offset 7)"},
      {"sha256:e3b0", FL_EINVALID, "sha256 hex must be 64 characters, got 4"},
      {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550",
       FL_EINVALID, "sha256 hex must be 64 characters, got 65"},
      {"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       FL_EINVALID, "sha512 hex must be 128 characters, got 64"},
      {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
       FL_EINVALID, "invalid character 'g' in hex (at offset 70)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(fl_digest_parse(bad[i].in, &alg, &err), bad[i].code);
    assert_int_equal(err.code, bad[i].code);
    if (!strstr(err.msg, bad[i].msg))
      fail_msg("parse(\"%s\"): message \"%s\" lacks \"%s\"", bad[i].in, err.msg,
               bad[i].msg);
  }
}

static void test_code_names(void **state) {
  (void)state;
  assert_string_equal(fl_code_name(FL_EDIGEST_MISMATCH), "DIGEST_MISMATCH");
  assert_string_equal(fl_code_name(FL_ENOT_FOUND), "NOT_FOUND");
  assert_string_equal(fl_code_name((fl_code)999), "UNKNOWN");
  fl_error err;
  fl_error_set(&err, FL_EIO, "disk %s", "full");
  fl_error_prefix(&err, "writing %s: ", "x");
  assert_string_equal(err.msg, "writing x: disk full");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_streaming_million_a),
      cmocka_unit_test(test_file),
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_code_names),
  };
  return cmocka_run_group_tests_name("digest", tests, NULL, NULL);
}
