/* fuzz_link.c - libFuzzer target: Link header pagination, URL resolution
 * of Location headers and the origin rule (origin.h) on what comes out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "registry/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstring(data, size);
  if (!s)
    return 0;
  char out[4096];
  fl_http_link_next(s, "http://127.0.0.1:5000/v2/_catalog?n=2", out,
                    sizeof out);
  if (fl_http_resolve_url("https://registry.example/v2/x/blobs/uploads/", s,
                          out, sizeof out) == FL_OK) {
    char o[FL_ORIGIN_MAX];
    (void)fl_origin_compare("https://registry.example", out);
    (void)fl_origin_of(out, o, sizeof o);
  }
  (void)fl_origin_compare("http://127.0.0.1:5000", s);
  (void)fl_origin_matches(s, "https://auth.example:443/token");
  free(s);
  return 0;
}
