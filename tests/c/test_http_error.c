/*
 * test_http_error.c - a registry's error bodies parsed into codes
 * (fl_registry_error_parse) and responses classified by those codes, not by
 * their text (fl_http_status_error): Distribution's own bodies, several
 * errors, garbage, hostile messages (control characters, huge), codes that
 * are not codes. The same paths run against a real registry in
 * tests/lua/registry_spec.lua (a blob put under the wrong digest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry/http.h"

static void test_parse_distribution_bodies(void **state) {
  fl_registry_error e;
  (void)state;
  const char *one = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":"
                    "\"manifest unknown\",\"detail\":{\"Tag\":\"v9\"}}]}";
  assert_int_equal(fl_registry_error_parse(one, strlen(one), &e), 1);
  assert_int_equal(e.count, 1);
  assert_string_equal(e.codes[0], "MANIFEST_UNKNOWN");
  assert_string_equal(e.message, "manifest unknown");
  assert_true(fl_registry_error_has(&e, "MANIFEST_UNKNOWN"));
  assert_false(fl_registry_error_has(&e, "MANIFEST"));
  assert_false(fl_registry_error_has(&e, ""));

  const char *two =
      "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"b\"},"
      "{\"code\":\"DIGEST_INVALID\",\"message\":\"d\"}]}";
  assert_int_equal(fl_registry_error_parse(two, strlen(two), &e), 1);
  assert_int_equal(e.count, 2);
  assert_true(fl_registry_error_has(&e, "DIGEST_INVALID"));
  assert_string_equal(e.message, "b");

  /* a message without a code, a code without a message */
  const char *msg_only = "{\"errors\":[{\"message\":\"quota exceeded\"}]}";
  assert_int_equal(fl_registry_error_parse(msg_only, strlen(msg_only), &e), 1);
  assert_string_equal(e.codes[0], "");
  assert_string_equal(e.message, "quota exceeded");
  const char *code_only = "{\"errors\":[{\"code\":\"DENIED\"}]}";
  assert_int_equal(fl_registry_error_parse(code_only, strlen(code_only), &e),
                   1);
  assert_string_equal(e.codes[0], "DENIED");
}

static void test_parse_garbage(void **state) {
  fl_registry_error e;
  (void)state;
  static const char *const bad[] = {
      "",
      "<html><body>502 Bad Gateway</body></html>",
      "{\"errors\":[]}",
      "{\"errors\":{\"code\":\"DENIED\"}}",
      "{\"errors\":[{\"code\":42,\"message\":7}]}",
      "{\"errors\":[\"DIGEST_INVALID\"]}",
      "[{\"code\":\"DIGEST_INVALID\"}]",
      "{\"errors\":[{\"code\":\"digest_invalid\"}]}",
      "{\"errors\":[{\"code\":\"DIGEST INVALID\\u001b[31m\"}]}",
      "{\"errors\":[{\"code\":\"\"}]}",
      "{\"errors\":[{\"code\":\"DIGEST_INVALID\"",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&e, 'x', sizeof e);
    assert_int_equal(fl_registry_error_parse(bad[i], strlen(bad[i]), &e), 0);
    assert_int_equal(e.count, 0);
    assert_string_equal(e.codes[0], "");
    assert_string_equal(e.message, "");
    assert_false(fl_registry_error_has(&e, "DIGEST_INVALID"));
  }
  assert_int_equal(fl_registry_error_parse(NULL, 10, &e), 0);
}

static void test_parse_hostile_message(void **state) {
  fl_registry_error e;
  char body[4096];
  char big[2000];
  (void)state;
  snprintf(body, sizeof body,
           "{\"errors\":[{\"code\":\"DENIED\",\"message\":"
           "\"line1\\nline2\\u001b[2J\\r\\u007f end\"}]}");
  assert_int_equal(fl_registry_error_parse(body, strlen(body), &e), 1);
  assert_string_equal(e.message, "line1?line2?[2J?? end");
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  snprintf(body, sizeof body,
           "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\"}]}",
           "A_CODE_THAT_IS_FAR_TOO_LONG_TO_BE_ANY_REAL_REGISTRY_CODE", big);
  assert_int_equal(fl_registry_error_parse(body, strlen(body), &e), 1);
  assert_string_equal(e.codes[0], ""); /* not kept: too long for a code */
  assert_int_equal(strlen(e.message), FL_REGISTRY_MESSAGE_MAX - 1);
  /* many errors: the first few codes are kept, all are counted */
  size_t at = (size_t)snprintf(body, sizeof body, "{\"errors\":[");
  for (int i = 0; i < 20; i++)
    at += (size_t)snprintf(body + at, sizeof body - at, "%s{\"code\":\"C%d\"}",
                           i ? "," : "", i);
  snprintf(body + at, sizeof body - at, "]}");
  assert_int_equal(fl_registry_error_parse(body, strlen(body), &e), 1);
  assert_int_equal(e.count, 20);
  assert_true(fl_registry_error_has(&e, "C7"));
  assert_false(fl_registry_error_has(&e, "C8")); /* beyond what is kept */
}

typedef struct status_case {
  long status;
  const char *body;
  fl_code code;
  const char *msg;
} status_case;

static void test_status_error(void **state) {
  fl_http *h = NULL;
  fl_http_config cfg = {.host = "registry.example", .tls_verify = 1};
  (void)state;
  assert_int_equal(fl_http_new(&cfg, &h, NULL), FL_OK);
  static const status_case cases[] = {
      {404,
       "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest "
       "unknown\"}]}",
       FL_ENOT_FOUND,
       "pushing x: registry.example answered HTTP 404: MANIFEST_UNKNOWN: "
       "manifest unknown"},
      /* the code decides, whatever the status */
      {400,
       "{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"provided "
       "digest did not match uploaded content\"}]}",
       FL_EDIGEST_MISMATCH,
       "pushing x: registry.example answered HTTP 400: DIGEST_INVALID: "
       "provided digest did not match uploaded content (the content does not "
       "match its digest)"},
      {400,
       "{\"errors\":[{\"code\":\"SIZE_INVALID\"},{\"code\":\"DIGEST_INVALID\"}"
       "]}",
       FL_EDIGEST_MISMATCH, "SIZE_INVALID (and 1 more)"},
      {503,
       "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow\"}]}",
       FL_ERATE_LIMITED, "TOOMANYREQUESTS: slow (rate limited"},
      /* the words in a message classify nothing */
      {400,
       "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"not "
       "DIGEST_INVALID, TOOMANYREQUESTS\"}]}",
       FL_EPROTOCOL, "BLOB_UNKNOWN: not DIGEST_INVALID"},
      {400, "DIGEST_INVALID", FL_EPROTOCOL,
       "pushing x: registry.example answered HTTP 400"},
      {401, "", FL_EUNAUTHORIZED, "(check the credentials"},
      {403, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no\"}]}",
       FL_EDENIED, "DENIED: no (the credentials are valid"},
      {429, NULL, FL_ERATE_LIMITED, "HTTP 429 (rate limited"},
      {502, "<html>bad gateway</html>", FL_ESERVER,
       "registry.example answered HTTP 502"},
      {302, NULL, FL_EPROTOCOL, "HTTP 302"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fl_http_response resp;
    fl_error err = {FL_OK, ""};
    memset(&resp, 0, sizeof resp);
    resp.status = cases[i].status;
    resp.body = (char *)cases[i].body;
    resp.body_len = cases[i].body ? strlen(cases[i].body) : 0;
    fl_code rc = fl_http_status_error(h, &resp, "pushing x", &err);
    if (rc != cases[i].code || !strstr(err.msg, cases[i].msg))
      print_error("case %zu: %s (%d), wanted %d \"%s\"\n", i, err.msg, (int)rc,
                  (int)cases[i].code, cases[i].msg);
    assert_int_equal(rc, cases[i].code);
    assert_int_equal(err.code, cases[i].code);
    assert_non_null(strstr(err.msg, cases[i].msg));
  }
  fl_http_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_distribution_bodies),
      cmocka_unit_test(test_parse_garbage),
      cmocka_unit_test(test_parse_hostile_message),
      cmocka_unit_test(test_status_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
