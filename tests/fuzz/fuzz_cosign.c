/* fuzz_cosign.c - libFuzzer target: one cosign signature check
 * (src/trust/cosign.c) with an input split into a signature annotation
 * (the first line) and a payload (the rest), against a fixed ECDSA key:
 * base64 decoding, DER parsing by OpenSSL, payload JSON. Nothing may be
 * accepted: the digest asked for is one no signature here covers (the seed
 * corpus has a real signature by this key, of another digest). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "trust/cosign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFNLqFhf4fiN6o/glAuYnq2jYUeL0\n"
    "vRuLu/z39pmbVwS9ff5AYnlwaP9sxREajdLY9ynM6G1sy6AAmb7Z63TsLg==\n"
    "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fl_trust_keys *keys;
  if (!keys) {
    keys = fl_trust_keys_new();
    if (!keys ||
        fl_trust_keys_add_pem(keys, "k", key, sizeof key - 1, NULL) != FL_OK)
      abort();
  }
  char *s = fuzz_cstring(data, size);
  if (!s)
    return 0;
  char *nl = strchr(s, '\n');
  const char *payload = nl ? nl + 1 : "";
  if (nl)
    *nl = '\0';
  unsigned long long matched = 0;
  char why[256];
  fl_sig_status st = fl_cosign_check(
      keys, payload, strlen(payload), s,
      "sha256:0000000000000000000000000000000000000000000000000000000000000000",
      &matched, why, sizeof why);
  if (st == FL_SIG_VALID)
    abort();
  free(s);
  return 0;
}
