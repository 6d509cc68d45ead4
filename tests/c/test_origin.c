/*
 * test_origin.c - the origin rule (src/registry/origin.h): which URLs a
 * registry hands over may receive its credentials, which are another
 * origin, which are refused (plain HTTP from HTTPS, not http(s) at all);
 * default ports, case, IPv6, userinfo and look-alike hosts; origins as a
 * user writes them; and fl_http_link_next + the rule together, as
 * pagination uses them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry/http.h"
#include "registry/origin.h"

typedef struct origin_case {
  const char *base;
  const char *url;
  fl_origin_verdict want;
} origin_case;

static const origin_case cases[] = {
    /* the registry's own origin, however it is spelled */
    {"https://reg.example", "https://reg.example/v2/x/tags/list",
     FL_ORIGIN_SAME},
    {"https://reg.example", "https://reg.example:443/v2/", FL_ORIGIN_SAME},
    {"https://reg.example:443", "https://REG.Example/v2/", FL_ORIGIN_SAME},
    {"HTTPS://reg.example", "https://reg.example/v2/", FL_ORIGIN_SAME},
    {"http://127.0.0.1:5000", "http://127.0.0.1:5000/v2/_catalog?n=1",
     FL_ORIGIN_SAME},
    {"http://localhost", "http://localhost:80/v2/", FL_ORIGIN_SAME},
    {"http://[::1]:5000", "http://[::1]:5000/v2/", FL_ORIGIN_SAME},
    /* another origin: no credentials */
    {"http://127.0.0.1:5000", "http://127.0.0.1:5902/steal/catalog?n=1",
     FL_ORIGIN_OTHER},
    {"https://reg.example", "https://cdn.example/blob", FL_ORIGIN_OTHER},
    {"https://reg.example", "https://reg.example:8443/v2/", FL_ORIGIN_OTHER},
    {"https://reg.example", "https://reg.example.evil.test/v2/",
     FL_ORIGIN_OTHER},
    {"https://reg.example", "https://reg.example@evil.test/v2/",
     FL_ORIGIN_OTHER},
    {"http://127.0.0.1:5000", "https://127.0.0.1:5000/v2/", FL_ORIGIN_OTHER},
    {"http://127.0.0.1:5000", "http://localhost:5000/v2/", FL_ORIGIN_OTHER},
    {"http://[::1]:5000", "http://[::2]:5000/v2/", FL_ORIGIN_OTHER},
    /* an HTTPS registry never continues over plain HTTP */
    {"https://reg.example", "http://reg.example/v2/", FL_ORIGIN_DOWNGRADE},
    {"https://reg.example", "http://other.example/v2/", FL_ORIGIN_DOWNGRADE},
    {"https://127.0.0.1:5000", "http://127.0.0.1:5000/v2/",
     FL_ORIGIN_DOWNGRADE},
    /* not an absolute http(s) URL */
    {"https://reg.example", "/v2/relative", FL_ORIGIN_INVALID},
    {"https://reg.example", "ftp://reg.example/v2/", FL_ORIGIN_INVALID},
    {"https://reg.example", "file:///etc/passwd", FL_ORIGIN_INVALID},
    {"https://reg.example", "", FL_ORIGIN_INVALID},
    {"https://reg.example", NULL, FL_ORIGIN_INVALID},
    {"https://reg.example", "https://", FL_ORIGIN_INVALID},
    {"https://reg.example", "https://reg.example:99999/", FL_ORIGIN_INVALID},
};

static void test_compare_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fl_origin_verdict got = fl_origin_compare(cases[i].base, cases[i].url);
    if (got != cases[i].want)
      fail_msg("case %zu: %s vs %s: got %d (%s), want %d", i, cases[i].base,
               cases[i].url ? cases[i].url : "(null)", (int)got,
               fl_origin_verdict_text(got), (int)cases[i].want);
  }
}

static void test_origin_of(void **state) {
  (void)state;
  char o[FL_ORIGIN_MAX];
  assert_true(fl_origin_of("https://Reg.Example/v2/x?y#z", o, sizeof o));
  assert_string_equal(o, "https://reg.example:443");
  assert_true(
      fl_origin_of("http://u:secret@127.0.0.1:5902/steal", o, sizeof o));
  assert_string_equal(o, "http://127.0.0.1:5902"); /* no userinfo, ever */
  assert_true(fl_origin_of("http://[::1]/v2/", o, sizeof o));
  assert_string_equal(o, "http://[::1]:80");
  assert_false(fl_origin_of("gopher://x/", o, sizeof o));
  assert_false(fl_origin_of("not a url", o, sizeof o));
  char tiny[8];
  assert_false(fl_origin_of("https://reg.example/", tiny, sizeof tiny));
}

static void test_matches_configured(void **state) {
  (void)state;
  assert_true(fl_origin_matches("https://auth.docker.io",
                                "https://auth.docker.io/token?service=x"));
  assert_true(fl_origin_matches("https://auth.docker.io:443/",
                                "https://AUTH.docker.io/token"));
  assert_false(fl_origin_matches("https://auth.docker.io",
                                 "http://auth.docker.io/token"));
  assert_false(fl_origin_matches("https://auth.docker.io",
                                 "https://auth.docker.io.evil.test/token"));
  assert_false(fl_origin_matches("http://127.0.0.1:5001",
                                 "http://127.0.0.1:5002/token"));
  assert_false(fl_origin_matches("auth.docker.io", "https://auth.docker.io/"));
}

/* What paged_list does: resolve the Link against the current page, then
 * judge the result. A relative Link stays on the registry; an absolute one
 * to elsewhere is seen as another origin. */
static void test_link_then_rule(void **state) {
  (void)state;
  const char *base = "http://127.0.0.1:5000";
  const char *current = "http://127.0.0.1:5000/v2/_catalog?n=1";
  char next[4096];
  assert_true(fl_http_link_next("</v2/_catalog?last=a&n=1>; rel=\"next\"",
                                current, next, sizeof next));
  assert_int_equal(fl_origin_compare(base, next), FL_ORIGIN_SAME);
  assert_true(fl_http_link_next(
      "<http://127.0.0.1:5902/steal/catalog?n=1>; rel=\"next\"", current, next,
      sizeof next));
  assert_int_equal(fl_origin_compare(base, next), FL_ORIGIN_OTHER);
  assert_true(fl_http_link_next("<//evil.test/v2/_catalog>; rel=next", current,
                                next, sizeof next));
  assert_int_equal(fl_origin_compare(base, next), FL_ORIGIN_OTHER);
  assert_true(fl_http_link_next("<http://127.0.0.1:5000/v2/_catalog>; "
                                "rel=\"next\"",
                                "https://127.0.0.1:5000/v2/_catalog", next,
                                sizeof next));
  assert_int_equal(fl_origin_compare("https://127.0.0.1:5000", next),
                   FL_ORIGIN_DOWNGRADE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compare_table),
      cmocka_unit_test(test_origin_of),
      cmocka_unit_test(test_matches_configured),
      cmocka_unit_test(test_link_then_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
