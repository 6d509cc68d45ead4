/* fuzz_challenge.c - libFuzzer target: WWW-Authenticate parsing, token
 * request building from what parses, token responses, header redaction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "registry/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstring(data, size);
  if (!s)
    return 0;
  fl_challenge ch[4];
  int n = fl_auth_parse_challenges(s, ch, 4);
  for (int i = 0; i < n; i++) {
    const char *scopes[] = {"repository:a/b:pull"};
    fl_token_request req;
    fl_error err;
    if (fl_token_request_build(&ch[i], scopes, 1, NULL, &req, &err) == FL_OK)
      fl_token_request_clear(&req);
  }
  fl_token tok;
  fl_error err;
  if (fl_token_response_parse(s, size, &tok, &err) == FL_OK)
    fl_token_clear(&tok);
  char out[256];
  fl_auth_redact(s, out, sizeof out);
  free(s);
  return 0;
}
