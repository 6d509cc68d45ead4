/* fuzz_registry_error.c - libFuzzer target: turning a registry's error
 * response (any status, any body: JSON `errors` or garbage) into a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "registry/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
  fl_error err;
  fl_http_status_error(h, &resp, "fuzzing", &err);
  free(resp.body);
  return 0;
}
