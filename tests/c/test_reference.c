/*
 * test_reference.c - table tests for image reference parsing (fl_ref_parse,
 * fl_ref_parse_repository), formatting and loopback detection. The tables
 * follow distribution/reference's reference_test.go and normalize_test.go,
 * seen through the normalising parser (ParseNormalizedNamed + TagNameOnly).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry/reference.h"

#define H64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define H128 H64 H64
#define D256 "sha256:" H64
#define D512 "sha512:" H128
#define DBCC                                                                   \
  "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
#define ID64 "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
#define HUB "docker.io"
#define REPO_HINT                                                              \
  "allowed: lower-case letters, digits, '/' between components, and '.', "     \
  "'_', '__' or '-' between letters or digits"
#define TAG_HINT "allowed: letters, digits, '_', '.' and '-'"
#define HUB_API "registry-1.docker.io"

typedef struct valid_case {
  const char *in;
  const char *domain;
  const char *api_host;
  const char *path;
  const char *tag;
  const char *digest;
  int tag_defaulted;
} valid_case;

static const valid_case valid_cases[] = {
    /* Docker Hub normalisation */
    {"alpine", HUB, HUB_API, "library/alpine", "latest", "", 1},
    {"alpine:3.19", HUB, HUB_API, "library/alpine", "3.19", "", 0},
    {"user/app", HUB, HUB_API, "user/app", "latest", "", 1},
    {"user/app:v1.2.3", HUB, HUB_API, "user/app", "v1.2.3", "", 0},
    {"docker.io/library/alpine", HUB, HUB_API, "library/alpine", "latest", "",
     1},
    {"docker.io/alpine", HUB, HUB_API, "library/alpine", "latest", "", 1},
    {"index.docker.io/alpine:edge", HUB, HUB_API, "library/alpine", "edge", "",
     0},
    {"index.docker.io/user/app", HUB, HUB_API, "user/app", "latest", "", 1},
    {"docker.io/library/foo/bar", HUB, HUB_API, "library/foo/bar", "latest", "",
     1},
    {"store/foo/bar", HUB, HUB_API, "store/foo/bar", "latest", "", 1},
    {"docker/migrator", HUB, HUB_API, "docker/migrator", "latest", "", 1},
    {"test_com", HUB, HUB_API, "library/test_com", "latest", "", 1},
    {"test_com/foo", HUB, HUB_API, "test_com/foo", "latest", "", 1},
    {"test.com:tag", HUB, HUB_API, "library/test.com", "tag", "", 0},
    {"test.com:5000", HUB, HUB_API, "library/test.com", "5000", "", 0},
    {"lowercase:Uppercase", HUB, HUB_API, "library/lowercase", "Uppercase", "",
     0},
    {"foo/foo_bar.com:8080", HUB, HUB_API, "foo/foo_bar.com", "8080", "", 0},
    {"192.168.1.1", HUB, HUB_API, "library/192.168.1.1", "latest", "", 1},
    {"192.168.1.1:5000", HUB, HUB_API, "library/192.168.1.1", "5000", "", 0},
    {"localhost", HUB, HUB_API, "library/localhost", "latest", "", 1},
    {"dbcc1", HUB, HUB_API, "library/dbcc1", "latest", "", 1},
    {"docker.io/" ID64, HUB, HUB_API, "library/" ID64, "latest", "", 1},
    {"thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", HUB,
     HUB_API,
     "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
     "latest", "", 1},
    {"docker-rules/docker", HUB, HUB_API, "docker-rules/docker", "latest", "",
     1},
    {"docker---rules/docker", HUB, HUB_API, "docker---rules/docker", "latest",
     "", 1},
    {"dock__er/docker", HUB, HUB_API, "dock__er/docker", "latest", "", 1},
    {"d/docker", HUB, HUB_API, "d/docker", "latest", "", 1},
    {"jess/t", HUB, HUB_API, "jess/t", "latest", "", 1},
    {"redis@" DBCC, HUB, HUB_API, "library/redis", "", DBCC, 0},
    {"busybox:latest@" DBCC, HUB, HUB_API, "library/busybox", "latest", DBCC,
     0},
    {"dmcgowan/myapp@" DBCC, HUB, HUB_API, "dmcgowan/myapp", "", DBCC, 0},
    {"docker://alpine", HUB, HUB_API, "library/alpine", "latest", "", 1},
    /* other registries */
    {"docker://quay.io/coreos/etcd:v3.5", "quay.io", "quay.io", "coreos/etcd",
     "v3.5", "", 0},
    {"registry-1.docker.io/library/alpine", "registry-1.docker.io",
     "registry-1.docker.io", "library/alpine", "latest", "", 1},
    {"localhost/foo", "localhost", "localhost", "foo", "latest", "", 1},
    {"localhost:5000/foo/bar:tag", "localhost:5000", "localhost:5000",
     "foo/bar", "tag", "", 0},
    {"test.com/repo:tag", "test.com", "test.com", "repo", "tag", "", 0},
    {"test:5000/repo", "test:5000", "test:5000", "repo", "latest", "", 1},
    {"test:5000/repo@" D256, "test:5000", "test:5000", "repo", "", D256, 0},
    {"test:5000/repo:tag@" D256, "test:5000", "test:5000", "repo", "tag", D256,
     0},
    {"test-com:8080/foo", "test-com:8080", "test-com:8080", "foo", "latest", "",
     1},
    {"sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com",
     "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", "", 0},
    {"b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io",
     "b.gcr.io", "test.example.com/my-app", "test.example.com", "", 0},
    {"xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "xn--n3h.com", "myimage",
     "xn--n3h.com", "", 0},
    {"xn--7o8h.com/myimage:xn--7o8h.com@" D512, "xn--7o8h.com", "xn--7o8h.com",
     "myimage", "xn--7o8h.com", D512, 0},
    {"192.168.1.1/repo", "192.168.1.1", "192.168.1.1", "repo", "latest", "", 1},
    {"192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "192.168.1.1:5000",
     "repo", "5050", "", 0},
    {"127.0.0.1:5000/private/moonbase", "127.0.0.1:5000", "127.0.0.1:5000",
     "private/moonbase", "latest", "", 1},
    {"[2001:db8::1]/repo", "[2001:db8::1]", "[2001:db8::1]", "repo", "latest",
     "", 1},
    {"[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]",
     "[2001:db8:1:2:3:4:5:6]", "repo", "tag", "", 0},
    {"[2001:db8::1]:5000/repo:tag@" D256, "[2001:db8::1]:5000",
     "[2001:db8::1]:5000", "repo", "tag", D256, 0},
    {"[2001:db8::]:5000/repo", "[2001:db8::]:5000", "[2001:db8::]:5000", "repo",
     "latest", "", 1},
    {"[::1]:5000/repo", "[::1]:5000", "[::1]:5000", "repo", "latest", "", 1},
    {"[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000",
     "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", "latest", "", 1},
    /* an upper-case first element is a domain, as in distribution */
    {"Docker/docker", "Docker", "Docker", "docker", "latest", "", 1},
    {"FOO/bar:x", "FOO", "FOO", "bar", "x", "", 0},
    {"ghcr.io/a.b_c__d-e--f/g:_T.a-G9", "ghcr.io", "ghcr.io", "a.b_c__d-e--f/g",
     "_T.a-G9", "", 0},
    {"docker://localhost:5000/x@" D512, "localhost:5000", "localhost:5000", "x",
     "", D512, 0},
    {"a.b:0/c/d/e/f", "a.b:0", "a.b:0", "c/d/e/f", "latest", "", 1},
};

typedef struct invalid_case {
  const char *in;
  const char *want; /* substring of the message */
} invalid_case;

static const invalid_case invalid_cases[] = {
    {"", "invalid reference \"\": empty reference"},
    {"docker://", "empty reference after \"docker://\""},
    {":justtag",
     "repository name must have at least one component (at offset 0)"},
    {"@" D256, "repository name must have at least one component"},
    {"repo@sha256:ffffffffffffffffffffffffffffffffff",
     "sha256 hex must be 64 characters, got 34"},
    {"validname@invaliddigest:" H64,
     "unsupported digest algorithm \"invaliddigest\""},
    {"foo@md5:0123456789abcdef0123456789abcdef",
     "unsupported digest algorithm \"md5\" (supported: sha256, sha512) (at "
     "offset 4)"},
    {"Uppercase:tag", "repository name must be lowercase (at offset 0)"},
    {"test:5000/Uppercase/lowercase:tag",
     "repository name must be lowercase (at offset 10)"},
    {"docker/Docker", "repository name must be lowercase (at offset 7)"},
    {"docker.io/docker/Docker", "must be lowercase (at offset 17)"},
    {"a:b:c",
     "invalid tag \"b:c\": invalid character ':' (" TAG_HINT ") (at offset 3)"},
    {"aa/asdf$$^/aa",
     "invalid character '$' in repository name (" REPO_HINT ") (at offset 7)"},
    {"[2001:db8::1]",
     "invalid character '[' in repository name (" REPO_HINT ") (at offset 0)"},
    {"[2001:db8::1]:5000", "invalid character '['"},
    {"[fe80::1%eth0]:5000/repo",
     "invalid character '%' in IPv6 address (only hex digits and ':' are "
     "allowed) (at offset 8)"},
    /* the '@' starts a digest, so the name is "[fe80::1%" and has no domain */
    {"[fe80::1%@invalidzone]:5000/repo",
     "invalid character '[' in repository name (" REPO_HINT ") (at offset 0)"},
    {"[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid character '.' in IPv6"},
    {"[]:5000/x", "empty IPv6 address (at offset 1)"},
    {"[::1/x", "'[' without ']' (at offset 0)"},
    {"https://github.com/docker/docker", "empty port after ':' (at offset 6)"},
    {"fc00::1:5000/debian", "invalid character ':' in port (at offset 5)"},
    {"localhost:50a0/x", "invalid character 'a' in port (at offset 12)"},
    {"-docker", "path component must start with a lower-case letter or digit, "
                "not '-' (at offset 0)"},
    {"-docker/docker", "must start with a lower-case letter or digit"},
    {"-docker.io/docker/docker",
     "domain \"-docker.io\": each name component must start with a letter or "
     "digit (at offset 0)"},
    {"a-.com/x", "name component \"a-\" must not end with '-' (at offset 1)"},
    {"a..com/x",
     "each name component must start with a letter or digit (at offset 2)"},
    {"foo_bar.com/x",
     "domain \"foo_bar.com\": invalid character '_' (at offset 3)"},
    {"docker///docker",
     "empty path component in repository name (at offset 7)"},
    {"docker.io/docker///docker", "empty path component"},
    {"docker/", "empty path component in repository name (at offset 7)"},
    {"/foo", "empty path component in repository name (at offset 0)"},
    {ID64, "is an image ID, not a repository name"},
    {"docker-/docker", "must not end with a separator (at offset 6)"},
    {"-docker-/docker", "must start with a lower-case letter or digit"},
    {"____/____", "must start with a lower-case letter or digit, not '_'"},
    {"_docker/_docker", "not '_' (at offset 0)"},
    /* a first element with a '.' is a domain, so these fail as domains */
    {"dock..er/docker", "domain \"dock..er\": each name component must start "
                        "with a letter or digit (at offset 5)"},
    {"dock_.er/docker", "domain \"dock_.er\": invalid character '_'"},
    {"dock-.er/docker", "name component \"dock-\" must not end with '-'"},
    {"docker/dock..er", "invalid separator \"..\" in repository name (allowed: "
                        "'.', '_', '__' or a run of '-') (at offset 11)"},
    {"x/dock_.er", "invalid separator \"_.\" in repository name"},
    {"x/dock-.er", "invalid separator \"-.\" in repository name"},
    {"x/a-_b", "invalid separator \"-_\""},
    {"x/dock.-er", "invalid separator \".-\""},
    {"dock___er/x", "invalid separator \"___\""},
    {"foo bar",
     "invalid character ' ' in repository name (" REPO_HINT ") (at offset 3)"},
    {"\tfoo", "invalid character \\x09 in repository name"},
    {"a/b:c/d",
     "invalid character ':' in repository name (" REPO_HINT ") (at offset 3)"},
    {"foo:", "empty tag after ':' (at offset 4)"},
    {"foo:-bar",
     "invalid tag \"-bar\": must start with a letter, digit or '_', not '-'"},
    {"foo:a+b",
     "invalid tag \"a+b\": invalid character '+' (" TAG_HINT ") (at offset 5)"},
    {"foo@", "empty digest after '@' (at offset 4)"},
    {"foo:tag@", "empty digest after '@'"},
    {"foo@sha256", "missing ':' between algorithm and hex"},
    {"foo@SHA256:" H64, "invalid character 'S' in algorithm (at offset 4)"},
    {"foo@sha256+:" H64, "invalid character ':' in algorithm"},
    {"foo@sha256:" H64 "@x", "invalid character '@' in hex (at offset 75)"},
    {"foo@sha256:abc", "sha256 hex must be 64 characters, got 3"},
    {"foo@sha256:"
     "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
     "hex must be lower-case (at offset 11)"},
    {"foo@sha512:" H64, "sha512 hex must be 128 characters, got 64"},
    {"docker://docker://alpine", "empty port after ':'"},
};

/* ---- helpers ------------------------------------------------------------ */

static void assert_ref(const fl_ref *r, const valid_case *c) {
  assert_string_equal(r->domain, c->domain);
  assert_string_equal(r->api_host, c->api_host);
  assert_string_equal(r->path, c->path);
  assert_string_equal(r->tag, c->tag);
  assert_string_equal(r->digest, c->digest);
  assert_int_equal(r->tag_defaulted, c->tag_defaulted);
}

static void assert_same_ref(const fl_ref *a, const fl_ref *b) {
  assert_string_equal(a->domain, b->domain);
  assert_string_equal(a->api_host, b->api_host);
  assert_string_equal(a->path, b->path);
  assert_string_equal(a->tag, b->tag);
  assert_string_equal(a->digest, b->digest);
  assert_int_equal(a->tag_defaulted, b->tag_defaulted);
}

static int is_zeroed(const fl_ref *r) {
  static const fl_ref zero;
  return memcmp(r, &zero, sizeof zero) == 0;
}

static void expect_invalid(const char *in, const char *want) {
  fl_ref r;
  fl_error err = {FL_OK, ""};
  fl_code rc = fl_ref_parse(in, &r, &err);
  if (rc != FL_EINVALID || !strstr(err.msg, want))
    print_error("input \"%s\": rc %d, message \"%s\", wanted \"%s\"\n", in,
                (int)rc, err.msg, want);
  assert_int_equal(rc, FL_EINVALID);
  assert_int_equal(err.code, FL_EINVALID);
  assert_non_null(strstr(err.msg, want));
  assert_true(is_zeroed(&r));
}

/* ---- parsing ------------------------------------------------------------ */

static void test_valid(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
    fl_ref r;
    fl_error err = {FL_OK, ""};
    fl_code rc = fl_ref_parse(valid_cases[i].in, &r, &err);
    if (rc != FL_OK)
      print_error("input \"%s\": %s\n", valid_cases[i].in, err.msg);
    assert_int_equal(rc, FL_OK);
    assert_ref(&r, &valid_cases[i]);
  }
}

static void test_invalid(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++)
    expect_invalid(invalid_cases[i].in, invalid_cases[i].want);
}

static void test_message_shape(void **state) {
  fl_ref r;
  fl_error err;
  (void)state;
  assert_int_equal(fl_ref_parse("docker/Docker", &r, &err), FL_EINVALID);
  assert_string_equal(err.msg,
                      "invalid reference \"docker/Docker\": repository name "
                      "must be lowercase (at offset 7)");
  /* err may be NULL; a NULL string is an error, not a crash */
  assert_int_equal(fl_ref_parse("a:b:c", &r, NULL), FL_EINVALID);
  assert_true(is_zeroed(&r));
  assert_int_equal(fl_ref_parse(NULL, &r, &err), FL_EINVALID);
  assert_int_equal(fl_ref_parse_repository(NULL, &r, NULL), FL_EINVALID);
}

/* The 255-character limit on "domain/path", as normalised. */
static void test_name_length(void **state) {
  char in[600];
  fl_ref r;
  fl_error err;
  (void)state;
  memcpy(in, "example.com/", 12); /* 12 + 243 = 255: the longest name */
  memset(in + 12, 'a', 243);
  strcpy(in + 255, ":tag");
  assert_int_equal(fl_ref_parse(in, &r, &err), FL_OK);
  assert_int_equal(strlen(r.path), 243);
  strcpy(in + 255, "a:tag");
  assert_int_equal(fl_ref_parse(in, &r, &err), FL_EINVALID);
  assert_non_null(
      strstr(err.msg,
             "must not be more than 255 characters (\"domain/path\" is 256)"));
  assert_non_null(strstr(err.msg, "...\": ")); /* the input is cut short */
  /* Docker Hub: "docker.io/" + 245 */
  memcpy(in, "u/", 2);
  memset(in + 2, 'b', 243);
  in[245] = '\0';
  assert_int_equal(fl_ref_parse(in, &r, &err), FL_OK);
  strcpy(in + 245, "b");
  expect_invalid(in, "must not be more than 255 characters");
  /* distribution's case: "a/" x 128 + "a:tag" */
  for (int i = 0; i < 128; i++)
    memcpy(in + 2 * i, "a/", 2);
  strcpy(in + 256, "a:tag");
  expect_invalid(in, "must not be more than 255 characters");
  /* a one-part Hub name counts the "library/" it gets */
  memset(in, 'c', 237);
  in[237] = '\0';
  assert_int_equal(fl_ref_parse(in, &r, &err), FL_OK);
  strcpy(in + 237, "c");
  expect_invalid(in, "(\"domain/path\" is 256)");
}

static void test_tag_length(void **state) {
  char in[300];
  fl_ref r;
  fl_error err;
  (void)state;
  strcpy(in, "foo:");
  memset(in + 4, 'T', 128);
  in[132] = '\0';
  assert_int_equal(fl_ref_parse(in, &r, &err), FL_OK);
  assert_int_equal(strlen(r.tag), 128);
  strcpy(in + 132, "T");
  expect_invalid(in, "longer than 128 characters (at offset 4)");
}

static void test_repository(void **state) {
  fl_ref r;
  fl_error err;
  (void)state;
  assert_int_equal(fl_ref_parse_repository("alpine", &r, &err), FL_OK);
  assert_string_equal(r.domain, HUB);
  assert_string_equal(r.api_host, HUB_API);
  assert_string_equal(r.path, "library/alpine");
  assert_string_equal(r.tag, "");
  assert_string_equal(r.digest, "");
  assert_int_equal(r.tag_defaulted, 0);
  assert_int_equal(fl_ref_parse_repository("localhost:5000/x/y", &r, &err),
                   FL_OK);
  assert_string_equal(r.domain, "localhost:5000");
  assert_string_equal(r.path, "x/y");
  assert_int_equal(fl_ref_parse_repository("docker://[::1]:5000/x", &r, &err),
                   FL_OK);
  assert_string_equal(r.domain, "[::1]:5000");
  assert_int_equal(fl_ref_parse_repository("alpine:3", &r, &err), FL_EINVALID);
  assert_non_null(
      strstr(err.msg, "must not include a tag (\"3\") (at offset 6)"));
  assert_int_equal(fl_ref_parse_repository("test.com:5000", &r, &err),
                   FL_EINVALID);
  assert_non_null(strstr(err.msg, "must not include a tag (\"5000\")"));
  assert_int_equal(fl_ref_parse_repository("alpine@" D256, &r, &err),
                   FL_EINVALID);
  assert_non_null(strstr(err.msg, "must not include a digest (at offset 6)"));
  assert_true(is_zeroed(&r));
  assert_int_equal(fl_ref_parse_repository("Foo/Bar", &r, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "must be lowercase (at offset 4)"));
  assert_int_equal(fl_ref_parse_repository("", &r, &err), FL_EINVALID);
  assert_int_equal(fl_ref_parse_repository(ID64, &r, &err), FL_EINVALID);
}

/* ---- formatting --------------------------------------------------------- */

typedef struct format_case {
  const char *in;
  const char *full;
  const char *familiar;
  const char *name;
} format_case;

static const format_case format_cases[] = {
    {"alpine", "docker.io/library/alpine:latest", "alpine",
     "docker.io/library/alpine"},
    {"alpine:latest", "docker.io/library/alpine:latest", "alpine:latest",
     "docker.io/library/alpine"},
    {"docker.io/user/app:tag", "docker.io/user/app:tag", "user/app:tag",
     "docker.io/user/app"},
    {"index.docker.io/library/ubuntu-12.04-base",
     "docker.io/library/ubuntu-12.04-base:latest", "ubuntu-12.04-base",
     "docker.io/library/ubuntu-12.04-base"},
    {"library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar",
     "docker.io/library/foo/bar"},
    {"other/library", "docker.io/other/library:latest", "other/library",
     "docker.io/other/library"},
    {"busybox:latest@" DBCC, "docker.io/library/busybox:latest@" DBCC,
     "busybox:latest@" DBCC, "docker.io/library/busybox"},
    {"redis@" DBCC, "docker.io/library/redis@" DBCC, "redis@" DBCC,
     "docker.io/library/redis"},
    {"127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase:latest",
     "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase"},
    {"example.com:8000/private/moonbase:v1",
     "example.com:8000/private/moonbase:v1",
     "example.com:8000/private/moonbase:v1",
     "example.com:8000/private/moonbase"},
    {"Foo/bar", "Foo/bar:latest", "Foo/bar", "Foo/bar"},
    {"[::1]:5000/x:t@" D256, "[::1]:5000/x:t@" D256, "[::1]:5000/x:t@" D256,
     "[::1]:5000/x"},
    /* bare, a 64-hex name would read back as an image ID */
    {"docker.io/library/" ID64, "docker.io/library/" ID64 ":latest",
     "library/" ID64, "docker.io/library/" ID64},
    {ID64 "0", "docker.io/library/" ID64 "0:latest", ID64 "0",
     "docker.io/library/" ID64 "0"},
};

static void test_format(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0]; i++) {
    const format_case *c = &format_cases[i];
    char buf[512];
    fl_ref r;
    assert_int_equal(fl_ref_parse(c->in, &r, NULL), FL_OK);
    assert_int_equal(fl_ref_format(&r, buf, sizeof buf), strlen(c->full));
    assert_string_equal(buf, c->full);
    assert_int_equal(fl_ref_familiar(&r, buf, sizeof buf), strlen(c->familiar));
    assert_string_equal(buf, c->familiar);
    assert_int_equal(fl_ref_name(&r, buf, sizeof buf), strlen(c->name));
    assert_string_equal(buf, c->name);
  }
}

static void test_format_truncates(void **state) {
  char buf[8];
  fl_ref r;
  (void)state;
  assert_int_equal(fl_ref_parse("alpine", &r, NULL), FL_OK);
  assert_int_equal(fl_ref_format(&r, NULL, 0), 31);
  assert_int_equal(fl_ref_format(&r, buf, sizeof buf), 31);
  assert_string_equal(buf, "docker.");
  assert_int_equal(fl_ref_familiar(&r, buf, 3), 6);
  assert_string_equal(buf, "al");
  assert_int_equal(fl_ref_name(&r, NULL, 0), 24);
}

/* format and familiar both parse back to the same reference (format spells
 * out a defaulted tag, so only tag_defaulted may differ there). */
static void test_round_trip(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
    char buf[1024];
    fl_ref r, back;
    assert_int_equal(fl_ref_parse(valid_cases[i].in, &r, NULL), FL_OK);
    fl_ref_familiar(&r, buf, sizeof buf);
    assert_int_equal(fl_ref_parse(buf, &back, NULL), FL_OK);
    assert_same_ref(&back, &r);
    fl_ref_format(&r, buf, sizeof buf);
    assert_int_equal(fl_ref_parse(buf, &back, NULL), FL_OK);
    assert_int_equal(back.tag_defaulted, 0);
    back.tag_defaulted = r.tag_defaulted;
    assert_same_ref(&back, &r);
    fl_ref_name(&r, buf, sizeof buf);
    assert_int_equal(fl_ref_parse_repository(buf, &back, NULL), FL_OK);
    assert_string_equal(back.domain, r.domain);
    assert_string_equal(back.path, r.path);
  }
}

/* ---- loopback ----------------------------------------------------------- */

typedef struct loopback_case {
  const char *host;
  int want;
} loopback_case;

static const loopback_case loopback_cases[] = {
    {"localhost", 1},
    {"localhost:5000", 1},
    {"LocalHost:80", 1},
    {"127.0.0.1", 1},
    {"127.0.0.1:5000", 1},
    {"127.1.2.3", 1},
    {"127.255.255.255:1", 1},
    {"[::1]", 1},
    {"[::1]:5000", 1},
    {"[0:0:0:0:0:0:0:1]:443", 1},
    {"[0000::0001]", 1},
    {"[::0:1]", 1},
    {NULL, 0},
    {"", 0},
    {"localhost:", 0},
    {"localhost:x", 0},
    {"localhost.example.com", 0},
    {"localhostx", 0},
    {"mylocalhost", 0},
    {"128.0.0.1", 0},
    {"127.0.0", 0},
    {"127.0.0.1.5", 0},
    {"127.0.0.256", 0},
    {"127.0.0.1:", 0},
    {"0127.0.0.1", 0},
    {"127.0.0.01", 0},
    {"127.0.0.1/x", 0},
    {"10.0.0.1", 0},
    {"::1", 0},
    {"[::1", 0},
    {"[::2]", 0},
    {"[1::]", 0},
    {"[::]", 0},
    {"[::1:]", 0},
    {"[:::1]", 0},
    {"[::0::1]", 0},
    {"[0:0:0:0:0:0:0:0:1]", 0},
    {"[0:0:0:0:0:0:1]", 0},
    {"[00001::1]", 0},
    {"[fe80::1]", 0},
    {"[::ffff:127.0.0.1]", 0},
    {"[::1]x", 0},
    {"[::1]:", 0},
    {"docker.io", 0},
};

static void test_loopback(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof loopback_cases / sizeof loopback_cases[0];
       i++) {
    const loopback_case *c = &loopback_cases[i];
    if (fl_host_is_loopback(c->host) != c->want)
      print_error("host \"%s\": wanted %d\n", c->host ? c->host : "(null)",
                  c->want);
    assert_int_equal(fl_host_is_loopback(c->host), c->want);
  }
}

/* ---- one production alone (fl_ref_check_*) ----------------------------- */

typedef struct check_case {
  fl_code (*check)(const char *, fl_error *);
  const char *in;
  fl_code code; /* FL_OK: valid */
  const char *msg;
} check_case;

static fl_code check_digest_only(const char *s, fl_error *err) {
  return fl_ref_check_digest(s, NULL, err);
}

static fl_code check_ref_only(const char *s, fl_error *err) {
  return fl_ref_check_reference(s, NULL, err);
}

static void test_check_parts(void **state) {
  (void)state;
  static const check_case cases[] = {
      {fl_ref_check_repository, "library/alpine", FL_OK, NULL},
      {fl_ref_check_repository, "a/b__c/d-----e.f", FL_OK, NULL},
      {fl_ref_check_repository, "", FL_EINVALID,
       "invalid repository name \"\": repository name must have "
       "at least one component"},
      {fl_ref_check_repository, "UPPER/case", FL_EINVALID,
       "invalid repository name \"UPPER/case\": repository name "
       "must be lowercase (at offset 0)"},
      {fl_ref_check_repository, "a//b", FL_EINVALID,
       "empty path component in repository name (at offset 2)"},
      {fl_ref_check_repository, "a/b/", FL_EINVALID, "(at offset 4)"},
      {fl_ref_check_repository, "dock..er", FL_EINVALID,
       "invalid separator \"..\""},
      {fl_ref_check_repository, "x-", FL_EINVALID,
       "must not end with a separator (at offset 1)"},
      /* a domain is not part of a repository name in a URL */
      {fl_ref_check_repository, "localhost:5000/x", FL_EINVALID,
       "invalid character ':' in repository name (" REPO_HINT
       ") (at offset 9)"},
      {fl_ref_check_repository, "../etc", FL_EINVALID,
       "must start with a lower-case letter or digit, not '.'"},
      {fl_ref_check_tag, "v1.2.3-rc_1", FL_OK, NULL},
      {fl_ref_check_tag, "", FL_EINVALID, "a tag must not be empty"},
      {fl_ref_check_tag, ".dot", FL_EINVALID,
       "invalid tag \".dot\": must start with a letter, digit or '_', not "
       "'.' (at offset 0)"},
      {fl_ref_check_tag, "bad/tag", FL_EINVALID,
       "invalid tag \"bad/tag\": invalid character '/' (" TAG_HINT
       ") (at offset 3)"},
      {check_digest_only, D256, FL_OK, NULL},
      {check_digest_only, D512, FL_OK, NULL},
      {check_digest_only, "", FL_EINVALID, "expected algorithm:hex"},
      {check_digest_only, "sha256:../../etc", FL_EINVALID,
       "invalid digest \"sha256:../../etc\": invalid character '.' in hex "
       "(at offset 7)"},
      {check_digest_only, "md5:d41d8cd98f00b204e9800998ecf8427e",
       FL_EUNSUPPORTED, "unsupported digest algorithm \"md5\""},
      {check_digest_only, "sha256:", FL_EINVALID, "no hex after ':'"},
      {check_ref_only, "latest", FL_OK, NULL},
      {check_ref_only, D256, FL_OK, NULL},
      {check_ref_only, "", FL_EINVALID, "empty tag or digest"},
      {check_ref_only, "a:b", FL_EUNSUPPORTED,
       "invalid digest \"a:b\": unsupported digest algorithm \"a\""},
      {check_ref_only, "-x", FL_EINVALID, "invalid tag \"-x\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const check_case *c = &cases[i];
    fl_error err = {FL_OK, ""};
    fl_code rc = c->check(c->in, &err);
    if (rc != c->code || (c->msg && !strstr(err.msg, c->msg)))
      print_error("input \"%s\": rc %d, message \"%s\", wanted %d \"%s\"\n",
                  c->in, (int)rc, err.msg, (int)c->code, c->msg ? c->msg : "");
    assert_int_equal(rc, c->code);
    if (c->msg)
      assert_non_null(strstr(err.msg, c->msg));
  }
  /* the length limit of a name in a URL; NULL is an error, not a crash */
  char in[300];
  fl_error err;
  memset(in, 'a', 255);
  in[255] = '\0';
  assert_int_equal(fl_ref_check_repository(in, &err), FL_OK);
  strcpy(in + 255, "a");
  assert_int_equal(fl_ref_check_repository(in, &err), FL_EINVALID);
  assert_non_null(
      strstr(err.msg, "not be more than 255 characters (it is 256)"));
  assert_int_equal(fl_ref_check_repository(NULL, NULL), FL_EINVALID);
  assert_int_equal(fl_ref_check_tag(NULL, NULL), FL_EINVALID);
  assert_int_equal(fl_ref_check_digest(NULL, NULL, NULL), FL_EINVALID);
  assert_int_equal(fl_ref_check_reference(NULL, NULL, NULL), FL_EINVALID);
  fl_digest_alg alg = FL_SHA256;
  assert_int_equal(fl_ref_check_digest(D512, &alg, NULL), FL_OK);
  assert_int_equal(alg, FL_SHA512);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_message_shape),
      cmocka_unit_test(test_name_length),
      cmocka_unit_test(test_tag_length),
      cmocka_unit_test(test_repository),
      cmocka_unit_test(test_check_parts),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_truncates),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_loopback),
  };
  return cmocka_run_group_tests_name("reference", tests, NULL, NULL);
}
