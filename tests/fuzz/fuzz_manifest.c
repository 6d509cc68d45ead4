/* fuzz_manifest.c - libFuzzer target: manifest checks (size, JSON, schema
 * 1, media type) and descriptor listing, plus platform strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "registry/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fl_manifest m;
  memset(&m, 0, sizeof m);
  m.data = fuzz_cstring(data, size);
  if (!m.data)
    return 0;
  m.len = size;
  fl_error err;
  if (fl_manifest_check(&m, NULL, NULL, &err) == FL_OK) {
    fl_manifest_info info;
    if (fl_manifest_parse(&m, &info, &err) == FL_OK)
      fl_manifest_info_clear(&info);
  }
  fl_platform p;
  fl_platform_parse(m.data, &p, &err);
  free(m.data);
  return 0;
}
