/* fuzz_registry_error.c - libFuzzer target: a registry's error response (any
 * status, any body: JSON `errors` or garbage) parsed into codes
 * (fl_registry_error_parse) and turned into a code and a message
 * (fl_http_status_error). Checks what the parser promises: codes are
 * [A-Z0-9_]+, the message has no control characters, everything is
 * NUL-terminated within its field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "registry/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsed(const fl_registry_error *e) {
  for (size_t i = 0; i < FL_REGISTRY_CODES_MAX; i++) {
    const char *c = e->codes[i];
    if (!memchr(c, '\0', FL_REGISTRY_CODE_MAX))
      abort();
    for (; *c; c++)
      if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
        abort();
  }
  if (!memchr(e->message, '\0', sizeof e->message))
    abort();
  for (const unsigned char *m = (const unsigned char *)e->message; *m; m++)
    if (*m < 0x20 || *m == 0x7f)
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fl_http *h;
  if (!h) {
    fl_http_config cfg = {.host = "registry.example", .tls_verify = 1};
    if (fl_http_new(&cfg, &h, NULL) != FL_OK)
      return 0;
  }
  fl_http_response resp;
  memset(&resp, 0, sizeof resp);
  resp.body = fuzz_cstring(data, size);
  if (!resp.body)
    return 0;
  resp.body_len = size;
  resp.status = size ? 400 + data[0] % 200 : 500;
  fl_registry_error e;
  int found = fl_registry_error_parse(resp.body, resp.body_len, &e);
  check_parsed(&e);
  if (!found && (e.count || e.codes[0][0] || e.message[0]))
    abort();
  fl_error err;
  fl_code rc = fl_http_status_error(h, &resp, "fuzzing", &err);
  if (rc == FL_OK || rc != err.code)
    abort();
  free(resp.body);
  return 0;
}
