/* fuzz_reference.c - libFuzzer target: image reference parsing and the
 * round trip of what parses (format, then parse again); the checks of one
 * part alone (fl_ref_check_*) agree with the whole-reference parser. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char s[1024];
  if (size >= sizeof s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  fl_ref r, again;
  fl_error err;
  if (fl_ref_parse(s, &r, &err) == FL_OK) {
    char buf[1024];
    fl_ref_format(&r, buf, sizeof buf);
    if (fl_ref_parse(buf, &again, &err) != FL_OK ||
        strcmp(again.path, r.path) != 0 || strcmp(again.domain, r.domain) != 0)
      abort(); /* what we print must parse back to the same name */
    fl_ref_familiar(&r, buf, sizeof buf);
  }
  fl_ref_parse_repository(s, &r, &err);
  fl_host_is_loopback(s);
  /* a part that checks alone parses inside a reference, and the other way */
  char whole[1100];
  int tag_ok = fl_ref_check_tag(s, &err) == FL_OK;
  snprintf(whole, sizeof whole, "x:%s", s);
  if (!strpbrk(s, "/:@") && tag_ok != (fl_ref_parse(whole, &r, &err) == FL_OK))
    abort(); /* ('/', ':' and '@' move where a reference is cut) */
  int digest_ok = fl_ref_check_digest(s, NULL, &err) == FL_OK;
  snprintf(whole, sizeof whole, "x@%s", s);
  if (!strchr(s, '@') && digest_ok != (fl_ref_parse(whole, &r, &err) == FL_OK))
    abort();
  fl_ref_check_repository(s, &err);
  fl_ref_check_reference(s, NULL, &err);
  return 0;
}
