/*
 * fuzz_serve_route.c - the serve request router and the job-body check
 * (src/serve/route.c) and the cron parser (src/serve/cron.c) on arbitrary
 * input. The first line is "METHOD PATH", the rest the body; the body is
 * also tried as a cron expression. Invariants: a routed parameter is in
 * its alphabet, an accepted body is a JSON object with sync or source and
 * destination, a message always ends in a NUL within its buffer.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "serve/cron.h"
#include "serve/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstring(data, size);
  if (!s)
    return 0;
  char *nl = strchr(s, '\n');
  const char *body = nl ? nl + 1 : "";
  if (nl)
    *nl = '\0';
  char *sp = strchr(s, ' ');
  const char *method = s, *path = sp ? sp + 1 : "/";
  if (sp)
    *sp = '\0';
  fl_route r;
  fl_serve_route(method, path, &r);
  if (r.param[0])
    assert(fl_serve_param_ok(r.param, strlen(r.param)));
  size_t blen = nl ? size - (size_t)(body - s) : 0;
  char msg[256];
  memset(msg, 'x', sizeof msg);
  json_t *doc = fl_serve_check_job(body, blen, msg, sizeof msg);
  if (doc) {
    assert(json_is_object(doc));
    assert(json_object_get(doc, "sync") ||
           (json_object_get(doc, "source") &&
            json_object_get(doc, "destination")));
    json_decref(doc);
  } else {
    assert(memchr(msg, '\0', sizeof msg));
  }
  fl_cron c;
  if (blen < 200 && fl_cron_parse(body, &c, msg, sizeof msg) == 0) {
    time_t t = fl_cron_next(&c, 1700000000);
    assert(t == -1 || t > 1700000000);
  }
  free(s);
  return 0;
}
