/*
 * test_auth.c - WWW-Authenticate parsing (a table of real registries'
 * challenges, RFC 7235 corner cases, garbage and over-long input, plus a
 * seeded random/mutation sweep that ASan watches), scope strings, token
 * request building, token response parsing, the token cache with a fake
 * clock, and header redaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "registry/auth.h"

#define HUB_REALM "https://auth.docker.io/token"
#define HUB_CHALLENGE                                                          \
  "Bearer realm=\"" HUB_REALM "\",service=\"registry.docker.io\","             \
  "scope=\"repository:library/alpine:pull\""

/* ---- challenge parsing -------------------------------------------------- */

typedef struct want_chal {
  const char *scheme;
  const char *realm;
  const char *service;
  const char *scope;
  const char *error;
} want_chal;

typedef struct chal_case {
  const char *name;
  const char *header;
  int count;
  want_chal want[3];
} chal_case;

static const chal_case chal_cases[] = {
    {"docker hub",
     HUB_CHALLENGE,
     1,
     {{"bearer", HUB_REALM, "registry.docker.io",
       "repository:library/alpine:pull", ""}}},
    {"ghcr",
     "Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\","
     "scope=\"repository:user/image:pull\"",
     1,
     {{"bearer", "https://ghcr.io/token", "ghcr.io",
       "repository:user/image:pull", ""}}},
    {"quay, no scope",
     "Bearer realm=\"https://quay.io/v2/auth\",service=\"quay.io\"",
     1,
     {{"bearer", "https://quay.io/v2/auth", "quay.io", "", ""}}},
    {"ecr basic",
     "Basic realm=\"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/\","
     "service=\"ecr.amazonaws.com\"",
     1,
     {{"basic", "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
       "ecr.amazonaws.com", "", ""}}},
    {"harbor",
     "Bearer realm=\"https://harbor.example.com/service/token\","
     "service=\"harbor-registry\"",
     1,
     {{"bearer", "https://harbor.example.com/service/token", "harbor-registry",
       "", ""}}},
    {"insufficient scope, comma inside quotes",
     "Bearer realm=\"" HUB_REALM "\",service=\"registry.docker.io\","
     "scope=\"repository:samalba/my-app:pull,push\","
     "error=\"insufficient_scope\"",
     1,
     {{"bearer", HUB_REALM, "registry.docker.io",
       "repository:samalba/my-app:pull,push", "insufficient_scope"}}},
    {"two scopes in one parameter",
     "Bearer realm=\"https://r/t\",scope=\"repository:a:pull "
     "repository:b:pull,push\"",
     1,
     {{"bearer", "https://r/t", "", "repository:a:pull repository:b:pull,push",
       ""}}},
    {"bearer then basic",
     "Bearer realm=\"https://a/token\",service=\"a\", Basic realm=\"x\"",
     2,
     {{"bearer", "https://a/token", "a", "", ""}, {"basic", "x", "", "", ""}}},
    {"basic then bearer",
     "Basic realm=\"x\",Bearer realm=\"https://a/token\"",
     2,
     {{"basic", "x", "", "", ""}, {"bearer", "https://a/token", "", "", ""}}},
    {"rfc 7235 example",
     "Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", "
     "Basic realm=\"simple\"",
     2,
     {{"newauth", "apps", "", "", ""}, {"basic", "simple", "", "", ""}}},
    {"token68 then challenge",
     "Negotiate dXNlcjpwYXNz==, Bearer realm=\"https://r/t\"",
     2,
     {{"negotiate", "", "", "", ""}, {"bearer", "https://r/t", "", "", ""}}},
    {"three challenges",
     "Basic, Negotiate, Bearer realm=\"https://r/t\"",
     3,
     {{"basic", "", "", "", ""},
      {"negotiate", "", "", "", ""},
      {"bearer", "https://r/t", "", "", ""}}},
    {"case-insensitive names",
     "BEARER REALM=\"https://x/t\",Service=\"s\",ScOpE=\"repository:a:pull\"",
     1,
     {{"bearer", "https://x/t", "s", "repository:a:pull", ""}}},
    {"whitespace tolerant",
     "  Bearer \t realm = \"https://x/t\" ,\t service=  \"s\"  ",
     1,
     {{"bearer", "https://x/t", "s", "", ""}}},
    {"tab after scheme", "Basic\trealm=\"x\"", 1, {{"basic", "x", "", "", ""}}},
    {"backslash escapes",
     "Bearer realm=\"https://x/t\",scope=\"a\\\"b\\\\c\\d\"",
     1,
     {{"bearer", "https://x/t", "", "a\"b\\cd", ""}}},
    {"empty list elements",
     ", ,Bearer realm=\"r\",,service=\"s\", ,",
     1,
     {{"bearer", "r", "s", "", ""}}},
    {"unquoted values",
     "Bearer realm=https://x/t?a=b,service=reg",
     1,
     {{"bearer", "https://x/t?a=b", "reg", "", ""}}},
    {"empty quoted value",
     "Bearer realm=\"\",service=\"s\"",
     1,
     {{"bearer", "", "s", "", ""}}},
    {"duplicate parameter: last wins",
     "Bearer realm=\"https://first/t\",realm=\"https://second/t\"",
     1,
     {{"bearer", "https://second/t", "", "", ""}}},
    {"unknown parameters ignored",
     "Bearer realm=\"r\",charset=UTF-8,foo=\"bar, baz\",service=\"s\"",
     1,
     {{"bearer", "r", "s", "", ""}}},
    {"utf-8 in a quoted value",
     "Bearer realm=\"https://x/t\",service=\"r\xc3\xa9g\"",
     1,
     {{"bearer", "https://x/t", "r\xc3\xa9g", "", ""}}},
    {"scheme alone", "Basic", 1, {{"basic", "", "", "", ""}}},
    {"empty", "", 0, {{0}}},
    {"blank", "  \t ", 0, {{0}}},
    {"commas only", ",,, ,", 0, {{0}}},
    {"equals signs", "=== ", 0, {{0}}},
    {"a lone word is a token68",
     "Bearer realm",
     1,
     {{"bearer", "", "", "", ""}}},
    {"param without value", "Bearer realm service", 0, {{0}}},
    {"a word after a comma is a new challenge",
     "Bearer realm=\"x\", service",
     2,
     {{"bearer", "x", "", "", ""}, {"service", "", "", "", ""}}},
    {"token68 with padding", "Bearer realm=", 1, {{"bearer", "", "", "", ""}}},
    {"param with empty bare value", "Bearer service=\"s\", realm=", 0, {{0}}},
    {"unterminated quote", "Bearer realm=\"https://x/t", 0, {{0}}},
    {"unterminated quote swallows the rest",
     "Bearer realm=\"https://x/t, Basic realm=\"y\"",
     0,
     {{0}}},
    {"junk after a value, then a good challenge",
     "Bearer realm=\"x\" junk, Basic realm=\"y\"",
     1,
     {{"basic", "y", "", "", ""}}},
    {"control character in a value",
     "Bearer realm=\"https://x/\x01t\", Basic realm=\"y\"",
     1,
     {{"basic", "y", "", "", ""}}},
    {"DEL in a value", "Bearer realm=\"a\x7f\"", 0, {{0}}},
    {"garbage before a challenge",
     "\"quoted\" ???, Bearer realm=\"r\"",
     1,
     {{"bearer", "r", "", "", ""}}},
    {"scheme glued to a quote", "Bearer\"realm\"", 0, {{0}}},
    {"scheme glued to equals",
     "Bearer=x, Basic",
     1,
     {{"basic", "", "", "", ""}}},
    {"stray parameter is not a challenge",
     "realm=\"x\", Basic realm=\"y\"",
     1,
     {{"basic", "y", "", "", ""}}},
    {"quoted scheme", "\"Bearer\" realm=\"x\"", 0, {{0}}},
    {"trailing backslash", "Bearer realm=\"abc\\", 0, {{0}}},
};

static void check_challenge(const char *name, int i, const fl_challenge *got,
                            const want_chal *w) {
  const char *fields[][2] = {{got->scheme, w->scheme},
                             {got->realm, w->realm},
                             {got->service, w->service},
                             {got->scope, w->scope},
                             {got->error, w->error}};
  for (size_t f = 0; f < 5; f++) {
    if (strcmp(fields[f][0], fields[f][1]) != 0)
      print_error("%s: challenge %d field %zu: got \"%s\", want \"%s\"\n", name,
                  i, f, fields[f][0], fields[f][1]);
    assert_string_equal(fields[f][0], fields[f][1]);
  }
}

static void test_challenges(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof chal_cases / sizeof chal_cases[0]; i++) {
    const chal_case *c = &chal_cases[i];
    fl_challenge got[4];
    memset(got, 0x55, sizeof got);
    int n = fl_auth_parse_challenges(c->header, got, 4);
    if (n != c->count)
      print_error("%s: \"%s\": got %d challenges, want %d\n", c->name,
                  c->header, n, c->count);
    assert_int_equal(n, c->count);
    for (int j = 0; j < n; j++)
      check_challenge(c->name, j, &got[j], &c->want[j]);
  }
}

static void test_challenge_limits(void **state) {
  (void)state;
  fl_challenge ch[2];
  assert_int_equal(fl_auth_parse_challenges(NULL, ch, 2), 0);
  assert_int_equal(fl_auth_parse_challenges(HUB_CHALLENGE, NULL, 2), 0);
  assert_int_equal(fl_auth_parse_challenges(HUB_CHALLENGE, ch, 0), 0);
  assert_int_equal(fl_auth_parse_challenges(HUB_CHALLENGE, ch, -1), 0);
  /* more challenges than room: the first max */
  assert_int_equal(
      fl_auth_parse_challenges("Basic realm=\"a\", Basic realm=\"b\", "
                               "Bearer realm=\"c\"",
                               ch, 2),
      2);
  assert_string_equal(ch[0].realm, "a");
  assert_string_equal(ch[1].realm, "b");
}

/* A header with one parameter of `len` characters, then a good challenge. */
static char *long_header(const char *scheme, const char *param, size_t len) {
  size_t cap = len + 256;
  char *h = malloc(cap);
  assert_non_null(h);
  int off = snprintf(h, cap, "%s %s=\"", scheme, param);
  memset(h + off, 'a', len);
  snprintf(h + off + len, cap - off - len, "\", Basic realm=\"ok\"");
  return h;
}

static void test_challenge_overlong(void **state) {
  (void)state;
  fl_challenge ch[2];
  static const struct {
    const char *param;
    size_t fits; /* longest value that fits */
  } fields[] = {
      {"realm", 1023}, {"service", 255}, {"scope", 1023}, {"error", 63}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char *h = long_header("Bearer", fields[i].param, fields[i].fits);
    assert_int_equal(fl_auth_parse_challenges(h, ch, 2), 2);
    assert_string_equal(ch[0].scheme, "bearer");
    assert_string_equal(ch[1].realm, "ok");
    free(h);
    /* one more: the whole challenge is skipped, never truncated */
    h = long_header("Bearer", fields[i].param, fields[i].fits + 1);
    assert_int_equal(fl_auth_parse_challenges(h, ch, 2), 1);
    assert_string_equal(ch[0].scheme, "basic");
    assert_string_equal(ch[0].realm, "ok");
    free(h);
  }
  /* unknown parameters may be long: they are not stored */
  char *h = long_header("Bearer", "nonce", 100000);
  assert_int_equal(fl_auth_parse_challenges(h, ch, 2), 2);
  free(h);
  /* a bare value that does not fit */
  char bare[1200];
  memset(bare, 'b', sizeof bare);
  memcpy(bare, "Bearer realm=", 13);
  bare[sizeof bare - 1] = '\0';
  assert_int_equal(fl_auth_parse_challenges(bare, ch, 2), 0);
  /* scheme names: 15 characters fit, 16 do not */
  assert_int_equal(fl_auth_parse_challenges("abcdefghijklmno", ch, 2), 1);
  assert_string_equal(ch[0].scheme, "abcdefghijklmno");
  assert_int_equal(
      fl_auth_parse_challenges("abcdefghijklmnop realm=\"x\", Basic", ch, 2),
      1);
  assert_string_equal(ch[0].scheme, "basic");
}

/* Every field NUL-terminated inside its array. */
static void assert_sane(const fl_challenge *ch, int n, int max) {
  assert_in_range(n, 0, max);
  for (int i = 0; i < n; i++) {
    assert_true(strnlen(ch[i].scheme, sizeof ch[i].scheme) <
                sizeof ch[i].scheme);
    assert_true(ch[i].scheme[0] != '\0');
    assert_true(strnlen(ch[i].realm, sizeof ch[i].realm) < sizeof ch[i].realm);
    assert_true(strnlen(ch[i].service, sizeof ch[i].service) <
                sizeof ch[i].service);
    assert_true(strnlen(ch[i].scope, sizeof ch[i].scope) < sizeof ch[i].scope);
    assert_true(strnlen(ch[i].error, sizeof ch[i].error) < sizeof ch[i].error);
  }
}

static uint32_t rng_state = 12345;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* Random bytes and mutations of real headers: never a crash, an overflow
 * (under ASan) or a field without its NUL. */
static void test_challenge_random(void **state) {
  (void)state;
  static const char alphabet[] = "Bearer realm=\"\\, \t=abc/:service\"scope";
  static const char *const seeds[] = {
      HUB_CHALLENGE,
      "Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", "
      "Basic realm=\"simple\"",
      "Negotiate dXNlcjpwYXNz==, Bearer realm=\"https://r/t\"",
  };
  char buf[2048];
  fl_challenge ch[3];
  for (int iter = 0; iter < 60000; iter++) {
    size_t len;
    if (iter % 2 == 0) { /* random text over a hostile alphabet */
      len = rng() % 300;
      for (size_t i = 0; i < len; i++)
        buf[i] = (rng() % 4 == 0) ? (char)(1 + rng() % 255)
                                  : alphabet[rng() % (sizeof alphabet - 1)];
    } else { /* a seed with a few bytes changed, cut or repeated */
      const char *seed = seeds[rng() % 3];
      len = strlen(seed);
      memcpy(buf, seed, len);
      for (int m = 0, nm = 1 + (int)(rng() % 4); m < nm; m++)
        buf[rng() % len] = (char)(1 + rng() % 255);
      if (rng() % 3 == 0)
        len = rng() % len;
      if (rng() % 5 == 0 && 2 * len + 2 < sizeof buf) {
        buf[len] = ',';
        memcpy(buf + len + 1, buf, len);
        len = 2 * len + 1;
      }
    }
    buf[len] = '\0';
    int n = fl_auth_parse_challenges(buf, ch, 3);
    assert_sane(ch, n, 3);
  }
}

/* ---- scopes -------------------------------------------------------------- */

static void test_scope(void **state) {
  (void)state;
  char buf[64];
  assert_int_equal(fl_auth_scope(buf, sizeof buf, "library/alpine", "pull"),
                   strlen("repository:library/alpine:pull"));
  assert_string_equal(buf, "repository:library/alpine:pull");
  fl_auth_scope(buf, sizeof buf, "x/y", "pull,push");
  assert_string_equal(buf, "repository:x/y:pull,push");
  /* snprintf semantics */
  assert_int_equal(fl_auth_scope(NULL, 0, "a", "pull"), 17);
  assert_int_equal(fl_auth_scope(buf, 8, "a", "pull"), 17);
  assert_string_equal(buf, "reposit");
}

/* ---- token requests ------------------------------------------------------ */

static fl_challenge bearer(const char *realm, const char *service,
                           const char *scope) {
  fl_challenge ch;
  memset(&ch, 0, sizeof ch);
  strcpy(ch.scheme, "bearer");
  snprintf(ch.realm, sizeof ch.realm, "%s", realm);
  snprintf(ch.service, sizeof ch.service, "%s", service);
  snprintf(ch.scope, sizeof ch.scope, "%s", scope);
  return ch;
}

static void test_request_anonymous(void **state) {
  (void)state;
  fl_challenge ch;
  assert_int_equal(fl_auth_parse_challenges(HUB_CHALLENGE, &ch, 1), 1);
  const char *scopes[] = {"repository:library/alpine:pull"};
  fl_token_request req;
  fl_error err = {0};
  assert_int_equal(fl_token_request_build(&ch, scopes, 1, NULL, &req, &err),
                   FL_OK);
  /* the challenge's own scope is the same one: asked for once */
  assert_string_equal(req.url,
                      HUB_REALM "?service=registry.docker.io&scope="
                                "repository%3Alibrary%2Falpine%3Apull");
  assert_null(req.body);
  assert_null(req.authorization);
  assert_int_equal(req.is_post, 0);
  fl_token_request_clear(&req);
  assert_null(req.url);

  /* a username without a password is anonymous, as in Docker */
  fl_credentials cred = {.username = "alice"};
  assert_int_equal(fl_token_request_build(&ch, scopes, 1, &cred, &req, &err),
                   FL_OK);
  assert_null(req.authorization);
  assert_null(strstr(req.url, "account="));
  fl_token_request_clear(&req);
}

typedef struct url_case {
  const char *realm;
  const char *service;
  const char *ch_scope;
  const char *scopes[3];
  const char *want;
} url_case;

static const url_case url_cases[] = {
    {"https://x/token",
     "svc",
     "",
     {"repository:a:pull"},
     "https://x/token?service=svc&scope=repository%3Aa%3Apull"},
    {"https://x/token?foo=bar",
     "svc",
     "",
     {"repository:a:pull"},
     "https://x/token?foo=bar&service=svc&scope=repository%3Aa%3Apull"},
    {"https://x/token?", "svc", "", {NULL}, "https://x/token?service=svc"},
    {"https://x/token?a=1&",
     "",
     "",
     {"repository:a:pull"},
     "https://x/token?a=1&scope=repository%3Aa%3Apull"},
    {"https://x/token#frag", "svc", "", {NULL}, "https://x/token?service=svc"},
    {"HTTP://127.0.0.1:5001/auth",
     "",
     "",
     {NULL},
     "HTTP://127.0.0.1:5001/auth"},
    {"https://x/t",
     "",
     "",
     {"repository:a:pull", "repository:b:pull,push"},
     "https://x/t?scope=repository%3Aa%3Apull"
     "&scope=repository%3Ab%3Apull%2Cpush"},
    /* the challenge's scopes follow the caller's, without duplicates */
    {"https://x/t",
     "s",
     "repository:c:pull repository:a:pull",
     {"repository:a:pull", "", "repository:b:push"},
     "https://x/t?service=s&scope=repository%3Aa%3Apull"
     "&scope=repository%3Ab%3Apush&scope=repository%3Ac%3Apull"},
    {"https://x/t",
     "s",
     "repository:c:pull",
     {NULL},
     "https://x/t?service=s&scope=repository%3Ac%3Apull"},
    /* everything but unreserved characters is percent-encoded */
    {"https://x/t",
     "my service&x=y/~._-",
     "",
     {"registry:catalog:*"},
     "https://x/t?service=my%20service%26x%3Dy%2F~._-"
     "&scope=registry%3Acatalog%3A%2A"},
    {"https://x/t", "r\xc3\xa9g", "", {NULL}, "https://x/t?service=r%C3%A9g"},
};

static void test_request_urls(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof url_cases / sizeof url_cases[0]; i++) {
    const url_case *c = &url_cases[i];
    fl_challenge ch = bearer(c->realm, c->service, c->ch_scope);
    size_t n = 0;
    while (n < 3 && c->scopes[n])
      n++;
    fl_token_request req;
    fl_error err = {0};
    assert_int_equal(
        fl_token_request_build(&ch, c->scopes, n, NULL, &req, &err), FL_OK);
    if (strcmp(req.url, c->want) != 0)
      print_error("case %zu: got %s\n want %s\n", i, req.url, c->want);
    assert_string_equal(req.url, c->want);
    fl_token_request_clear(&req);
  }
}

static void test_request_basic(void **state) {
  (void)state;
  fl_challenge ch = bearer("https://auth.example.com/token", "reg", "");
  const char *scopes[] = {"repository:a:pull,push"};
  fl_credentials cred = {.username = "user@example.com",
                         .password = "pa:ss w0rd"};
  fl_token_request req;
  fl_error err = {0};
  assert_int_equal(fl_token_request_build(&ch, scopes, 1, &cred, &req, &err),
                   FL_OK);
  assert_int_equal(req.is_post, 0);
  assert_null(req.body);
  assert_string_equal(req.url, "https://auth.example.com/token?service=reg"
                               "&scope=repository%3Aa%3Apull%2Cpush"
                               "&account=user%40example.com");
  /* base64("user@example.com:pa:ss w0rd") */
  assert_string_equal(req.authorization,
                      "Basic dXNlckBleGFtcGxlLmNvbTpwYTpzcyB3MHJk");
  fl_token_request_clear(&req);
  assert_null(req.authorization);

  /* lengths 1, 2, 3 mod 3: padding */
  fl_credentials c2 = {.username = "a", .password = "b"};
  assert_int_equal(fl_token_request_build(&ch, NULL, 0, &c2, &req, &err),
                   FL_OK);
  assert_string_equal(req.authorization, "Basic YTpi");
  fl_token_request_clear(&req);
  fl_credentials c3 = {.username = "ab", .password = "c1"};
  assert_int_equal(fl_token_request_build(&ch, NULL, 0, &c3, &req, &err),
                   FL_OK);
  assert_string_equal(req.authorization, "Basic YWI6YzE=");
  fl_token_request_clear(&req);
}

static void test_request_identity_token(void **state) {
  (void)state;
  fl_challenge ch = bearer("https://auth.example.com/oauth?x=1#f", "reg",
                           "repository:c:pull");
  const char *scopes[] = {"repository:a:pull", "repository:b:push"};
  fl_credentials cred = {.username = "alice", .identity_token = "tok/en+=&"};
  fl_token_request req;
  fl_error err = {0};
  assert_int_equal(fl_token_request_build(&ch, scopes, 2, &cred, &req, &err),
                   FL_OK);
  assert_int_equal(req.is_post, 1);
  assert_string_equal(req.url, "https://auth.example.com/oauth?x=1");
  assert_null(req.authorization);
  assert_string_equal(req.body,
                      "grant_type=refresh_token&refresh_token=tok%2Fen%2B%3D%26"
                      "&service=reg&scope=repository%3Aa%3Apull%20"
                      "repository%3Ab%3Apush%20repository%3Ac%3Apull"
                      "&client_id=freightliner");
  fl_token_request_clear(&req);
  assert_null(req.body);

  /* no service, no scopes */
  fl_challenge bare = bearer("https://a/t", "", "");
  assert_int_equal(fl_token_request_build(&bare, NULL, 0, &cred, &req, &err),
                   FL_OK);
  assert_string_equal(req.body, "grant_type=refresh_token&refresh_token="
                                "tok%2Fen%2B%3D%26&client_id=freightliner");
  fl_token_request_clear(&req);
}

static void test_request_errors(void **state) {
  (void)state;
  fl_token_request req;
  fl_error err = {0};
  fl_credentials pw = {.username = "u", .password = "hunter2"};

  fl_challenge basic;
  assert_int_equal(fl_auth_parse_challenges("Basic realm=\"x\"", &basic, 1), 1);
  assert_int_equal(fl_token_request_build(&basic, NULL, 0, &pw, &req, &err),
                   FL_EINVALID);
  assert_null(req.url);
  assert_int_equal(fl_token_request_build(NULL, NULL, 0, &pw, &req, &err),
                   FL_EINVALID);

  fl_challenge ch = bearer("https://x/t", "s", "");
  fl_credentials rt = {.registry_token = "rtok"};
  snprintf(rt.source, sizeof rt.source, "config.json auths");
  assert_int_equal(fl_token_request_build(&ch, NULL, 0, &rt, &req, &err),
                   FL_EINVALID);
  assert_non_null(strstr(err.msg, "registry token"));
  assert_null(strstr(err.msg, "rtok"));

  static const char *const bad_realms[] = {
      "",        "ftp://x/t",  "https://",           "https:///path",
      "//x/t",   "/token",     "https://x/t t",      "https://x/\x01",
      "x/token", "https://?q", "https://x/t\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad_realms / sizeof bad_realms[0]; i++) {
    ch = bearer(bad_realms[i], "s", "");
    assert_int_equal(fl_token_request_build(&ch, NULL, 0, &pw, &req, &err),
                     FL_EPROTOCOL);
    assert_null(req.url);
    assert_null(req.authorization);
    assert_non_null(strstr(err.msg, "realm"));
    assert_null(strstr(err.msg, "hunter2"));
  }
}

/* ---- token responses ----------------------------------------------------- */

static fl_code parse(const char *body, fl_token *t, fl_error *err) {
  return fl_token_response_parse(body, body ? strlen(body) : 0, t, err);
}

static void test_response(void **state) {
  (void)state;
  fl_token t;
  fl_error err = {0};
  assert_int_equal(parse("{\"token\":\"abc.def\",\"expires_in\":300,"
                         "\"issued_at\":\"2024-01-01T00:00:00Z\"}",
                         &t, &err),
                   FL_OK);
  assert_string_equal(t.token, "abc.def");
  assert_int_equal(t.expires_in, 300);
  assert_null(t.refresh_token);
  fl_token_clear(&t);
  assert_null(t.token);

  static const struct {
    const char *body;
    const char *token;
    long expires;
    const char *refresh;
  } ok[] = {
      {"{\"access_token\":\"xyz\"}", "xyz", 60, NULL},
      {"{\"token\":\"a\",\"access_token\":\"b\"}", "a", 60, NULL},
      {"{\"token\":\"\",\"access_token\":\"b\"}", "b", 60, NULL},
      {"{\"token\":null,\"access_token\":\"b\"}", "b", 60, NULL},
      {"{\"token\":\"t\",\"expires_in\":30}", "t", 60, NULL},
      {"{\"token\":\"t\",\"expires_in\":-5}", "t", 60, NULL},
      {"{\"token\":\"t\",\"expires_in\":60}", "t", 60, NULL},
      {"{\"token\":\"t\",\"expires_in\":3600.7}", "t", 3600, NULL},
      {"{\"token\":\"t\",\"expires_in\":\"300\"}", "t", 60, NULL},
      {"{\"token\":\"t\",\"expires_in\":1e300}", "t", 315360000, NULL},
      {"{\"token\":\"t\",\"refresh_token\":\"r1\",\"expires_in\":900}", "t",
       900, "r1"},
      {"{\"token\":\"t\",\"refresh_token\":\"\"}", "t", 60, NULL},
      {"  {\"token\":\"t\"}  \n", "t", 60, NULL},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    assert_int_equal(parse(ok[i].body, &t, &err), FL_OK);
    assert_string_equal(t.token, ok[i].token);
    assert_int_equal(t.expires_in, ok[i].expires);
    if (ok[i].refresh)
      assert_string_equal(t.refresh_token, ok[i].refresh);
    else
      assert_null(t.refresh_token);
    fl_token_clear(&t);
  }
}

static void test_response_malformed(void **state) {
  (void)state;
  static const struct {
    const char *body;
    const char *says;
  } bad[] = {
      {"", "empty"},
      {"not json SECRET", "not valid JSON"},
      {"{\"token\":\"SECRET", "not valid JSON"},
      {"{\"token\":\"SECRET\",}", "not valid JSON"},
      {"[\"SECRET\"]", "not a JSON object"},
      {"\"SECRET\"", "not a JSON object"},
      {"{}", "no \"token\" or \"access_token\""},
      {"{\"token\":5}", "no \"token\" or \"access_token\""},
      {"{\"token\":\"\",\"access_token\":\"\"}", "no \"token\""},
      {"{\"token\":\"SECRET SECRET\"}", "HTTP header"},
      {"{\"token\":\"SECRET\\r\\nX-Evil: 1\"}", "HTTP header"},
      {"{\"token\":\"SECRET\\u00e9\"}", "HTTP header"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fl_token t;
    fl_error err = {0};
    assert_int_equal(parse(bad[i].body, &t, &err), FL_EPROTOCOL);
    assert_int_equal(err.code, FL_EPROTOCOL);
    assert_null(t.token);
    if (!strstr(err.msg, bad[i].says))
      print_error("case %zu: message \"%s\"\n", i, err.msg);
    assert_non_null(strstr(err.msg, bad[i].says));
    assert_null(strstr(err.msg, "SECRET"));
  }
  fl_token t;
  assert_int_equal(fl_token_response_parse(NULL, 0, &t, NULL), FL_EPROTOCOL);
  /* length is honoured: the text after len is not read */
  assert_int_equal(
      fl_token_response_parse("{\"token\":\"t\"}garbage", 13, &t, NULL), FL_OK);
  assert_string_equal(t.token, "t");
  fl_token_clear(&t);
}

/* ---- the token cache ----------------------------------------------------- */

static time_t fake_now_value = 1000000;
static time_t fake_now(void) { return fake_now_value; }

static void test_cache_expiry(void **state) {
  (void)state;
  fl_token_cache *c = fl_token_cache_new();
  assert_non_null(c);
  fl_token_cache_set_clock(c, fake_now);
  char tok[64];
  fake_now_value = 1000000;

  /* 300 s: 10% margin, fresh for 270 s */
  fl_token_cache_put(c, "k", "tok300", 300);
  fake_now_value += 269;
  assert_int_equal(fl_token_cache_get(c, "k", tok, sizeof tok), 1);
  assert_string_equal(tok, "tok300");
  fake_now_value += 1;
  assert_int_equal(fl_token_cache_get(c, "k", tok, sizeof tok), 0);
  assert_string_equal(tok, "");
  /* an expired entry is dropped, even if the clock went back */
  fake_now_value -= 100;
  assert_int_equal(fl_token_cache_get(c, "k", tok, sizeof tok), 0);

  /* 60 s (the default): 54 s */
  fl_token_cache_put(c, "k60", "t", 60);
  fake_now_value += 53;
  assert_int_equal(fl_token_cache_get(c, "k60", tok, sizeof tok), 1);
  fake_now_value += 1;
  assert_int_equal(fl_token_cache_get(c, "k60", tok, sizeof tok), 0);

  /* 20 s: the margin is at least 5 s, fresh for 15 s */
  fl_token_cache_put(c, "k20", "t", 20);
  fake_now_value += 14;
  assert_int_equal(fl_token_cache_get(c, "k20", tok, sizeof tok), 1);
  fake_now_value += 1;
  assert_int_equal(fl_token_cache_get(c, "k20", tok, sizeof tok), 0);

  /* 5 s or less: never fresh */
  fl_token_cache_put(c, "k5", "t", 5);
  assert_int_equal(fl_token_cache_get(c, "k5", tok, sizeof tok), 0);
  fl_token_cache_put(c, "kneg", "t", -100);
  assert_int_equal(fl_token_cache_get(c, "kneg", tok, sizeof tok), 0);

  /* absurd lifetimes are clamped, not overflowed */
  fl_token_cache_put(c, "kbig", "t", 0x7fffffffL);
  fake_now_value += 365L * 24 * 3600;
  assert_int_equal(fl_token_cache_get(c, "kbig", tok, sizeof tok), 1);
  fl_token_cache_free(c);
}

static void test_cache_replace_invalidate(void **state) {
  (void)state;
  fl_token_cache *c = fl_token_cache_new();
  fl_token_cache_set_clock(c, fake_now);
  char tok[16];
  fl_token_cache_put(c, "k", "first", 300);
  fl_token_cache_put(c, "k", "second", 300);
  assert_int_equal(fl_token_cache_get(c, "k", tok, sizeof tok), 1);
  assert_string_equal(tok, "second");
  assert_int_equal(fl_token_cache_get(c, "other", tok, sizeof tok), 0);

  fl_token_cache_invalidate(c, "k");
  assert_int_equal(fl_token_cache_get(c, "k", tok, sizeof tok), 0);
  fl_token_cache_invalidate(c, "k"); /* absent: nothing happens */
  fl_token_cache_invalidate(c, NULL);

  /* too long for the caller's buffer: a miss, tok "" */
  fl_token_cache_put(c, "long", "0123456789abcdef", 300);
  assert_int_equal(fl_token_cache_get(c, "long", tok, sizeof tok), 0);
  assert_string_equal(tok, "");
  char big[17];
  assert_int_equal(fl_token_cache_get(c, "long", big, sizeof big), 1);
  assert_string_equal(big, "0123456789abcdef");

  /* NULLs are harmless */
  fl_token_cache_put(c, NULL, "t", 300);
  fl_token_cache_put(c, "k", NULL, 300);
  assert_int_equal(fl_token_cache_get(NULL, "k", tok, sizeof tok), 0);
  assert_int_equal(fl_token_cache_get(c, NULL, tok, sizeof tok), 0);
  fl_token_cache_set_clock(c, NULL); /* back to the real clock */
  fl_token_cache_put(c, "real", "t", 300);
  assert_int_equal(fl_token_cache_get(c, "real", tok, sizeof tok), 1);
  fl_token_cache_free(c);
  fl_token_cache_free(NULL);
}

static void test_cache_eviction(void **state) {
  (void)state;
  fl_token_cache *c = fl_token_cache_new();
  fl_token_cache_set_clock(c, fake_now);
  char key[32], tok[32];
  for (int i = 0; i < FL_TOKEN_CACHE_MAX; i++) {
    snprintf(key, sizeof key, "k%d", i);
    fl_token_cache_put(c, key, key, 3600);
  }
  /* full: the one put longest ago goes */
  fl_token_cache_put(c, "new1", "n1", 3600);
  assert_int_equal(fl_token_cache_get(c, "k0", tok, sizeof tok), 0);
  assert_int_equal(fl_token_cache_get(c, "k1", tok, sizeof tok), 1);
  assert_int_equal(fl_token_cache_get(c, "new1", tok, sizeof tok), 1);
  /* a replaced entry counts as new */
  fl_token_cache_put(c, "k1", "k1b", 3600);
  fl_token_cache_put(c, "new2", "n2", 3600);
  assert_int_equal(fl_token_cache_get(c, "k1", tok, sizeof tok), 1);
  assert_string_equal(tok, "k1b");
  assert_int_equal(fl_token_cache_get(c, "k2", tok, sizeof tok), 0);
  /* an expired entry goes before the oldest fresh one */
  fl_token_cache_put(c, "k100", "short", 1);
  fl_token_cache_put(c, "new3", "n3", 3600);
  assert_int_equal(fl_token_cache_get(c, "k3", tok, sizeof tok), 1);
  assert_int_equal(fl_token_cache_get(c, "new3", tok, sizeof tok), 1);
  assert_int_equal(fl_token_cache_get(c, "k100", tok, sizeof tok), 0);
  /* still bounded: count what is there */
  int present = 0;
  for (int i = 0; i < FL_TOKEN_CACHE_MAX; i++) {
    snprintf(key, sizeof key, "k%d", i);
    present += fl_token_cache_get(c, key, tok, sizeof tok);
  }
  for (int i = 1; i <= 3; i++) {
    snprintf(key, sizeof key, "new%d", i);
    present += fl_token_cache_get(c, key, tok, sizeof tok);
  }
  assert_true(present <= FL_TOKEN_CACHE_MAX);
  assert_int_equal(present, FL_TOKEN_CACHE_MAX);
  fl_token_cache_free(c);
}

static void test_cache_key(void **state) {
  (void)state;
  char a[256], b[256];
  fl_token_cache_key(a, sizeof a, "ghcr.io", "repository:x/y:pull", "alice");
  assert_string_equal(a, "7:ghcr.io|19:repository:x/y:pull|5:alice");
  /* distinct triples never collide, even with separators inside */
  fl_token_cache_key(a, sizeof a, "a|1:b", "", "");
  fl_token_cache_key(b, sizeof b, "a", "b", "");
  assert_string_not_equal(a, b);
  fl_token_cache_key(a, sizeof a, "h", "s", "");
  fl_token_cache_key(b, sizeof b, "h", "s", NULL);
  assert_string_equal(a, b);
  assert_int_equal(fl_token_cache_key(NULL, 0, "h", "s", "i"), 11);
}

static void *cache_worker(void *arg) {
  fl_token_cache *c = arg;
  char key[32], tok[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "k%d", i % 300);
    if (i % 3 == 0)
      fl_token_cache_put(c, key, "tok", 300);
    else if (i % 7 == 0)
      fl_token_cache_invalidate(c, key);
    else if (fl_token_cache_get(c, key, tok, sizeof tok))
      assert_string_equal(tok, "tok");
  }
  return NULL;
}

static void test_cache_threads(void **state) {
  (void)state;
  fl_token_cache *c = fl_token_cache_new();
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, cache_worker, c), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  fl_token_cache_free(c);
}

/* ---- redaction ----------------------------------------------------------- */

static void test_redact(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *want;
  } cases[] = {
      {"Authorization: Bearer xyz", "Authorization: Bearer <redacted>"},
      {"authorization: Basic dXNlcjpwYXNz\r\n",
       "authorization: Basic <redacted>\r\n"},
      {"AUTHORIZATION:Bearer  a b c", "AUTHORIZATION:Bearer  <redacted>"},
      {"Proxy-Authorization: Basic abc",
       "Proxy-Authorization: Basic <redacted>"},
      {"Authorization: xyz", "Authorization: <redacted>"},
      {"Authorization: AWS4-HMAC-SHA256 Credential=a/b, Signature=c",
       "Authorization: AWS4-HMAC-SHA256 <redacted>"},
      {"Authorization:", "Authorization:"},
      {"Authorization:   ", "Authorization:   "},
      {"Accept: application/json", "Accept: application/json"},
      {"X-Authorization: Bearer x", "X-Authorization: Bearer x"},
      {"WWW-Authenticate: Bearer realm=\"x\"",
       "WWW-Authenticate: Bearer realm=\"x\""},
      {"no colon at all", "no colon at all"},
      {"", ""},
      {"GET /v2/ HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer abc\r\n"
       "Accept: */*\r\n\r\n",
       "GET /v2/ HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer <redacted>\r\n"
       "Accept: */*\r\n\r\n"},
  };
  char out[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fl_auth_redact(cases[i].in, out, sizeof out);
    assert_string_equal(out, cases[i].want);
  }
  /* truncation never leaks, always terminates */
  char small[20];
  fl_auth_redact("Authorization: Bearer SECRETSECRET", small, sizeof small);
  assert_string_equal(small, "Authorization: Bear");
  fl_auth_redact("Authorization: SECRETSECRET", small, 17);
  assert_string_equal(small, "Authorization: <");
  fl_auth_redact("Accept: x", small, 1);
  assert_string_equal(small, "");
  memset(small, 'x', sizeof small);
  fl_auth_redact("Accept: x", small, 0);
  assert_int_equal(small[0], 'x');
  fl_auth_redact(NULL, out, sizeof out);
  assert_string_equal(out, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_challenges),
      cmocka_unit_test(test_challenge_limits),
      cmocka_unit_test(test_challenge_overlong),
      cmocka_unit_test(test_challenge_random),
      cmocka_unit_test(test_scope),
      cmocka_unit_test(test_request_anonymous),
      cmocka_unit_test(test_request_urls),
      cmocka_unit_test(test_request_basic),
      cmocka_unit_test(test_request_identity_token),
      cmocka_unit_test(test_request_errors),
      cmocka_unit_test(test_response),
      cmocka_unit_test(test_response_malformed),
      cmocka_unit_test(test_cache_expiry),
      cmocka_unit_test(test_cache_replace_invalidate),
      cmocka_unit_test(test_cache_eviction),
      cmocka_unit_test(test_cache_key),
      cmocka_unit_test(test_cache_threads),
      cmocka_unit_test(test_redact),
  };
  return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
