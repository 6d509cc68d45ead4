/*
 * test_credentials.c - fl_credentials_lookup against fixture config files
 * (tests/c/data/auth) and real credential helpers: each test gets a temp
 * directory with an empty HOME and a bin/ of small shell scripts named
 * docker-credential-* that is put first on PATH, so the code under test
 * spawns real programs exactly as it would docker-credential-ecr-login.
 * Covers Docker config auths (auth with ':' in the password, Docker Hub
 * keys, identity and registry tokens, namespace keys), credHelpers and
 * credsStore, the containers auth.json locations, explicit settings,
 * precedence, helper failures (not found, error, timeout, output bound,
 * signal, missing binary, no shell) and malformed files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry/credentials.h"

static char tmp[256];          /* this test's temp directory */
static char helplog[PATH_MAX]; /* what fltest read on stdin */
static char cwd[PATH_MAX];
static char *orig_path;

/* ---- fixtures ------------------------------------------------------------ */

/* tests/c/data/auth, absolute (the tests chdir): $FL_TEST_DATA as ctest
 * sets it, else next to this file. Resolved on first use, in setup. */
static const char *data_dir(void) {
  static char dir[PATH_MAX];
  char rel[PATH_MAX];
  if (dir[0])
    return dir;
  const char *env = getenv("FL_TEST_DATA");
  if (env && *env) {
    snprintf(rel, sizeof rel, "%s/auth", env);
  } else {
    snprintf(rel, sizeof rel, "%s", __FILE__);
    char *slash = strrchr(rel, '/');
    size_t at = slash ? (size_t)(slash + 1 - rel) : 0;
    snprintf(rel + at, sizeof rel - at, "data/auth");
  }
  if (!realpath(rel, dir))
    snprintf(dir, sizeof dir, "%s", rel);
  return dir;
}

static const char *fixture(const char *rel) {
  static char path[4][2 * PATH_MAX];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, sizeof path[0], "%s/%s", data_dir(), rel);
  return p;
}

static const char *in_tmp(const char *rel) {
  static char path[4][PATH_MAX];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, sizeof path[0], "%s/%s", tmp, rel);
  return p;
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
}

static void helper(const char *name, const char *body) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/bin/docker-credential-%s", tmp, name);
  char *text = malloc(strlen(body) + 32);
  assert_non_null(text);
  sprintf(text, "#!/bin/sh\n%s\n", body);
  write_file(path, text, 0755);
  free(text);
}

static void make_helpers(void) {
  helper("fltest",
         "[ \"$1\" = get ] || { echo \"bad arguments: $*\" >&2; exit 3; }\n"
         "IFS= read -r server\n"
         "printf '%s\\n' \"$server\" >> \"$FLTEST_LOG\"\n"
         "printf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\","
         "\"Secret\":\"helper:secret\"}\\n' \"$server\"");
  helper("flnone", "IFS= read -r server\n"
                   "echo 'credentials not found in native keychain'\n"
                   "exit 1");
  helper("flfail", "IFS= read -r server\n"
                   "echo 'error getting credentials: keychain is locked' >&2\n"
                   "echo 'second line' >&2\n"
                   "exit 1");
  helper("flfailout", "IFS= read -r server\n"
                      "echo 'error on stdout only'\n"
                      "exit 2");
  helper("fltoken", "IFS= read -r server\n"
                    "echo '{\"ServerURL\":\"x\",\"Username\":\"<token>\","
                    "\"Secret\":\"idtok-123\"}'");
  helper("flslow", "exec sleep 10");
  helper("flbig", "head -c 1100000 /dev/zero | tr '\\0' a");
  helper("flbadjson", "echo 'not json'");
  helper("flempty",
         "echo '{\"ServerURL\":\"\",\"Username\":\"\",\"Secret\":\"\"}'");
  helper("flnouser", "echo '{\"Secret\":\"s\"}'");
  helper("flnoread", "echo '{\"Username\":\"u\",\"Secret\":\"s\"}'");
  helper("flsignal", "kill -9 $$");
  write_file(in_tmp("bin/docker-credential-flnoexec"), "#!/bin/sh\n", 0644);
}

/* rm -rf path (no symlinks are followed). */
static int rm_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return -1;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (!d)
      return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char sub[PATH_MAX];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      rm_tree(sub);
    }
    closedir(d);
    return rmdir(path);
  }
  return unlink(path);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof tmp, "/tmp/fl-test-cred-XXXXXX");
  if (!mkdtemp(tmp))
    return -1;
  if (mkdir(in_tmp("home"), 0700) != 0 || mkdir(in_tmp("bin"), 0700) != 0)
    return -1;
  snprintf(helplog, sizeof helplog, "%s/helper.log", tmp);
  make_helpers();
  data_dir();
  if (!getcwd(cwd, sizeof cwd) || chdir(tmp) != 0)
    return -1;
  char path[2 * PATH_MAX];
  if (!orig_path)
    orig_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
  snprintf(path, sizeof path, "%s/bin:%s", tmp, orig_path);
  setenv("PATH", path, 1);
  setenv("HOME", in_tmp("home"), 1);
  setenv("FLTEST_LOG", helplog, 1);
  unsetenv("DOCKER_CONFIG");
  unsetenv("REGISTRY_AUTH_FILE");
  unsetenv("XDG_RUNTIME_DIR");
  unsetenv("FL_TEST_PW");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fl_credentials_set_helper_timeout(0);
  if (chdir(cwd) != 0)
    return -1;
  setenv("PATH", orig_path, 1);
  return rm_tree(tmp);
}

/* What fltest was given on stdin, one line per run. */
static const char *helper_log(void) {
  static char buf[1024];
  buf[0] = '\0';
  FILE *f = fopen(helplog, "r");
  if (f) {
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
  }
  return buf;
}

static void docker_config(const char *name) {
  setenv("DOCKER_CONFIG", fixture(name), 1);
}

/* Look up host and check username and password (NULL: must be NULL). */
static void expect_basic(const char *host, const char *user, const char *pass,
                         const char *source_has) {
  fl_credentials c;
  fl_error err = {0};
  fl_code rc = fl_credentials_lookup(host, NULL, &c, &err);
  if (rc != FL_OK)
    print_error("%s: %s: %s\n", host, fl_code_name(rc), err.msg);
  assert_int_equal(rc, FL_OK);
  if (user)
    assert_string_equal(c.username, user);
  else
    assert_null(c.username);
  if (pass)
    assert_string_equal(c.password, pass);
  else
    assert_null(c.password);
  if (!strstr(c.source, source_has))
    print_error("%s: source \"%s\" lacks \"%s\"\n", host, c.source, source_has);
  assert_non_null(strstr(c.source, source_has));
  fl_credentials_clear(&c);
}

/* Look up host, expect code rc and a message containing has. */
static void expect_error(const char *host, const fl_cred_settings *s,
                         fl_code want, const char *has) {
  fl_credentials c;
  fl_error err = {0};
  fl_code rc = fl_credentials_lookup(host, s, &c, &err);
  if (rc != want || !strstr(err.msg, has))
    print_error("%s: got %s \"%s\", want %s \"...%s...\"\n", host,
                fl_code_name(rc), err.msg, fl_code_name(want), has);
  assert_int_equal(rc, want);
  assert_int_equal(err.code, want);
  assert_non_null(strstr(err.msg, has));
  assert_null(c.username);
  assert_null(c.password);
  assert_null(c.identity_token);
  assert_null(c.registry_token);
}

/* ---- Docker config: auths ----------------------------------------------- */

static void test_docker_auths(void **state) {
  (void)state;
  docker_config("docker-auths");
  /* auth: base64(user:password), split at the first colon */
  expect_basic("registry.example.com", "alice", "pa:ss:word",
               "config.json auths \"registry.example.com\"");
  /* Docker Hub under its legacy key, by any of its names */
  expect_basic("docker.io", "hubuser", "hubpass", "index.docker.io/v1/");
  expect_basic("registry-1.docker.io", "hubuser", "hubpass", "auths");
  expect_basic("index.docker.io", "hubuser", "hubpass", "auths");
  /* "http://host/v1/" keys, username/password fields */
  expect_basic("legacy.example.com", "bob", "bobpw", "legacy.example.com");
  /* hosts match without regard to case */
  expect_basic("mixed.example.com", "mixed", "mixedpw", "Mixed");
  expect_basic("localhost:5000", "local", "localpw", "localhost:5000");
  expect_basic("unpadded.example.com", "dave", "pw1", "unpadded");

  fl_credentials c;
  fl_error err = {0};
  assert_int_equal(fl_credentials_lookup("idt.example.com", NULL, &c, &err),
                   FL_OK);
  assert_string_equal(c.identity_token, "refresh-123");
  assert_string_equal(c.username, "carol");
  assert_null(c.password);
  assert_int_equal(fl_credentials_is_bearer(&c), 0);
  assert_string_equal(fl_credentials_identity(&c), "carol");
  fl_credentials_clear(&c);

  assert_int_equal(fl_credentials_lookup("rt.example.com", NULL, &c, &err),
                   FL_OK);
  assert_string_equal(c.registry_token, "rtok");
  assert_null(c.username);
  assert_int_equal(fl_credentials_is_bearer(&c), 1);
  assert_string_equal(fl_credentials_identity(&c), c.source);
  fl_credentials_clear(&c);

  /* "{}" is nothing; a namespace key does not name the bare host; a port
   * is part of the host */
  expect_error("empty.example.com", NULL, FL_ENOT_FOUND,
               "no credentials for empty.example.com");
  expect_error("quay.io", NULL, FL_ENOT_FOUND, "docker-auths/config.json");
  expect_error("localhost", NULL, FL_ENOT_FOUND, "no credentials");
  expect_error("example.com", NULL, FL_ENOT_FOUND, "no credentials");
}

static void test_docker_config_location(void **state) {
  (void)state;
  /* no DOCKER_CONFIG: ~/.docker/config.json, shown with "~" */
  setenv("HOME", fixture("home"), 1);
  expect_basic("homedocker.example.com", "hd", "hdpw",
               "~/.docker/config.json auths");
  /* DOCKER_CONFIG replaces ~/.docker */
  docker_config("docker-auths");
  expect_error("homedocker.example.com", NULL, FL_ENOT_FOUND,
               "docker-auths/config.json");
  /* an empty DOCKER_CONFIG is unset */
  setenv("DOCKER_CONFIG", "", 1);
  expect_basic("homedocker.example.com", "hd", "hdpw", "~/.docker");
  /* nowhere to look */
  unsetenv("HOME");
  unsetenv("DOCKER_CONFIG");
  expect_error("x.example.com", NULL, FL_ENOT_FOUND, "no credentials");
}

/* ---- Docker config: helpers ---------------------------------------------- */

static void test_docker_helpers(void **state) {
  (void)state;
  docker_config("docker-helpers");
  expect_basic("helped.example.com", "helper-user", "helper:secret",
               "credential helper docker-credential-fltest");
  assert_string_equal(helper_log(), "helped.example.com\n");
  /* credHelpers wins over auths for the same host */
  expect_basic("registry.example.com", "helper-user", "helper:secret",
               "docker-credential-fltest");
  /* an empty auths entry, or none: credsStore */
  expect_basic("stored.example.com", "helper-user", "helper:secret",
               "docker-credential-fltest");
  expect_basic("other.example.com", "helper-user", "helper:secret",
               "docker-credential-fltest");
  /* Docker Hub is known to stores by its legacy URL */
  expect_basic("registry-1.docker.io", "helper-user", "helper:secret",
               "fltest");
  assert_string_equal(helper_log(), "helped.example.com\nregistry.example.com\n"
                                    "stored.example.com\nother.example.com\n"
                                    "https://index.docker.io/v1/\n");

  /* Username "<token>": the secret is an identity token */
  fl_credentials c;
  fl_error err = {0};
  assert_int_equal(fl_credentials_lookup("token.example.com", NULL, &c, &err),
                   FL_OK);
  assert_null(c.username);
  assert_null(c.password);
  assert_string_equal(c.identity_token, "idtok-123");
  assert_string_equal(c.source, "credential helper docker-credential-fltoken");
  fl_credentials_clear(&c);

  expect_error("none.example.com", NULL, FL_ENOT_FOUND,
               "credential helper docker-credential-flnone has no "
               "credentials for none.example.com");
  expect_error("fail.example.com", NULL, FL_EUNAUTHORIZED,
               "credential helper docker-credential-flfail failed for "
               "fail.example.com (exit status 1): error getting credentials: "
               "keychain is locked");
  fl_credentials_lookup("fail.example.com", NULL, &c, &err);
  assert_null(strstr(err.msg, "second line"));
  expect_error("missing.example.com", NULL, FL_EUNAUTHORIZED,
               "docker-credential-flmissing not found on PATH");
}

/* ---- helper failures ---------------------------------------------------- */

static void with_helper(const char *name, fl_code want, const char *has) {
  fl_cred_settings s = {.credential_helper = name};
  expect_error("h.example.com", &s, want, has);
}

static void test_helper_failures(void **state) {
  (void)state;
  with_helper("flfailout", FL_EUNAUTHORIZED,
              "(exit status 2): error on stdout only");
  with_helper("flbadjson", FL_EUNAUTHORIZED, "not a JSON object");
  with_helper("flempty", FL_ENOT_FOUND, "has no credentials");
  with_helper("flnouser", FL_EUNAUTHORIZED, "no username");
  with_helper("flsignal", FL_EUNAUTHORIZED, "killed by signal 9");
  with_helper("flbig", FL_EUNAUTHORIZED, "printed more than 1048576 bytes");
  with_helper("flnoexec", FL_EUNAUTHORIZED,
              "cannot run credential helper docker-credential-flnoexec");
  with_helper("flmissing", FL_EUNAUTHORIZED,
              "credential helper docker-credential-flmissing not found on "
              "PATH");
  with_helper("../bin/x", FL_EINVALID, "invalid credential helper name");
  with_helper("/usr/bin/env", FL_EINVALID, "invalid credential helper name");

  /* a helper that never reads stdin still works (and cannot SIGPIPE us) */
  fl_cred_settings s = {.credential_helper = "flnoread"};
  fl_credentials c;
  fl_error err = {0};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(fl_credentials_lookup("h.example.com", &s, &c, &err),
                     FL_OK);
    assert_string_equal(c.username, "u");
    assert_string_equal(c.password, "s");
    fl_credentials_clear(&c);
  }

  /* no shell: metacharacters are part of the program name */
  with_helper("x;touch pwned", FL_EUNAUTHORIZED, "not found on PATH");
  with_helper("$(touch pwned)", FL_EUNAUTHORIZED, "not found on PATH");
  assert_int_not_equal(access(in_tmp("pwned"), F_OK), 0);
  assert_int_not_equal(access("pwned", F_OK), 0);

  /* the timeout kills it */
  fl_credentials_set_helper_timeout(300);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  with_helper("flslow", FL_EUNAUTHORIZED, "did not answer");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_true(t1.tv_sec - t0.tv_sec < 5);
}

/* ---- explicit settings -------------------------------------------------- */

static void expect_explicit(const fl_cred_settings *s, const char *user,
                            const char *pass, const char *source) {
  fl_credentials c;
  fl_error err = {0};
  fl_code rc = fl_credentials_lookup("registry.example.com", s, &c, &err);
  if (rc != FL_OK)
    print_error("%s: %s\n", fl_code_name(rc), err.msg);
  assert_int_equal(rc, FL_OK);
  assert_string_equal(c.username, user);
  assert_string_equal(c.password, pass);
  assert_string_equal(c.source, source);
  fl_credentials_clear(&c);
}

static void test_explicit_env(void **state) {
  (void)state;
  docker_config("docker-auths"); /* has registry.example.com: not used */
  fl_cred_settings s = {.username = "eve", .password_env = "FL_TEST_PW"};
  setenv("FL_TEST_PW", "env:pw", 1);
  expect_explicit(&s, "eve", "env:pw", "password_env FL_TEST_PW");
  setenv("FL_TEST_PW", "", 1);
  expect_error("r.example.com", &s, FL_EINVALID,
               "environment variable FL_TEST_PW (password_env) is empty");
  unsetenv("FL_TEST_PW");
  expect_error("r.example.com", &s, FL_EINVALID,
               "environment variable FL_TEST_PW (password_env) is not set");

  /* settings with nothing in them are no settings */
  fl_cred_settings none = {0};
  expect_basic("registry.example.com", "alice", "pa:ss:word", "auths");
  fl_credentials c;
  fl_error err = {0};
  assert_int_equal(
      fl_credentials_lookup("registry.example.com", &none, &c, &err), FL_OK);
  assert_string_equal(c.username, "alice");
  fl_credentials_clear(&c);
}

static void test_explicit_file(void **state) {
  (void)state;
  fl_cred_settings s = {.username = "fred", .password_file = in_tmp("pw")};
  static const struct {
    const char *content;
    const char *password;
  } files[] = {
      {"filepw\n", "filepw"},         {"filepw", "filepw"},
      {"a b:c\r\n", "a b:c"},         {"two\n\n", "two\n"},
      {"  spaced  \n", "  spaced  "},
  };
  char source[PATH_MAX + 32];
  snprintf(source, sizeof source, "password_file %s", in_tmp("pw"));
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    write_file(in_tmp("pw"), files[i].content, 0600);
    expect_explicit(&s, "fred", files[i].password, source);
  }
  write_file(in_tmp("pw"), "\n", 0600);
  expect_error("r.example.com", &s, FL_EINVALID, "is empty");
  s.password_file = in_tmp("absent");
  expect_error("r.example.com", &s, FL_EIO,
               "absent (password_file for "
               "r.example.com) does not exist");
  s.password_file = in_tmp("home"); /* a directory */
  expect_error("r.example.com", &s, FL_EIO, "is a directory");
}

static void test_explicit_helper_and_conflicts(void **state) {
  (void)state;
  docker_config("docker-helpers"); /* credHelpers for fail.example.com */
  fl_cred_settings s = {.credential_helper = "fltest"};
  fl_credentials c;
  fl_error err = {0};
  assert_int_equal(fl_credentials_lookup("fail.example.com", &s, &c, &err),
                   FL_OK);
  assert_string_equal(c.username, "helper-user");
  assert_string_equal(c.source, "credential helper docker-credential-fltest");
  fl_credentials_clear(&c);
  assert_string_equal(helper_log(), "fail.example.com\n");
  /* explicit settings do not fall through when the helper has nothing */
  s.credential_helper = "flnone";
  expect_error("registry.example.com", &s, FL_ENOT_FOUND,
               "docker-credential-flnone has no credentials");

  fl_cred_settings both = {
      .username = "u", .password_env = "A", .password_file = "/x"};
  expect_error("r.example.com", &both, FL_EINVALID,
               "password_env and password_file cannot both be set");
  fl_cred_settings helper_env = {.password_env = "A",
                                 .credential_helper = "fltest"};
  expect_error("r.example.com", &helper_env, FL_EINVALID,
               "credential_helper and password_env cannot both be set");
  fl_cred_settings no_user = {.password_env = "A"};
  expect_error("r.example.com", &no_user, FL_EINVALID,
               "password_env is set but username is not");
  fl_cred_settings user_only = {.username = "u"};
  expect_error("r.example.com", &user_only, FL_EINVALID,
               "username is set but neither password_env nor password_file");
}

/* ---- containers auth.json ----------------------------------------------- */

static void test_containers_auth(void **state) {
  (void)state;
  /* $REGISTRY_AUTH_FILE, alone */
  setenv("REGISTRY_AUTH_FILE", fixture("containers/auth.json"), 1);
  setenv("XDG_RUNTIME_DIR", fixture("xdg"), 1);
  expect_basic("podman.example.com", "pod", "man", "containers/auth.json");
  expect_error("xdgonly.example.com", NULL, FL_ENOT_FOUND,
               "containers/auth.json");
  expect_error("quay.io", NULL, FL_ENOT_FOUND, "no credentials for quay.io");
  /* then $XDG_RUNTIME_DIR/containers/auth.json, then ~/.config */
  unsetenv("REGISTRY_AUTH_FILE");
  setenv("HOME", fixture("home"), 1);
  expect_basic("podman.example.com", "xdg", "xdgpw", "xdg/containers");
  expect_basic("xdgonly.example.com", "xdgonly", "pw", "xdg/containers");
  expect_basic("homeonly.example.com", "homeonly", "pw",
               "~/.config/containers/auth.json");
  unsetenv("XDG_RUNTIME_DIR");
  expect_basic("podman.example.com", "home", "homepw", "~/.config");
  /* a $REGISTRY_AUTH_FILE that does not exist: nothing, not an error */
  setenv("REGISTRY_AUTH_FILE", in_tmp("absent.json"), 1);
  expect_error("podman.example.com", NULL, FL_ENOT_FOUND, "absent.json");
}

static void test_precedence(void **state) {
  (void)state;
  docker_config("docker-auths");
  setenv("REGISTRY_AUTH_FILE", fixture("containers/auth.json"), 1);
  /* in both: Docker config first */
  expect_basic("registry.example.com", "alice", "pa:ss:word",
               "docker-auths/config.json");
  /* only in auth.json; "{}" in config.json falls through too */
  expect_basic("podman.example.com", "pod", "man", "containers/auth.json");
  /* explicit settings first of all */
  fl_cred_settings s = {.username = "eve", .password_env = "FL_TEST_PW"};
  setenv("FL_TEST_PW", "envpw", 1);
  expect_explicit(&s, "eve", "envpw", "password_env FL_TEST_PW");
  /* a declining credsStore falls through to auth.json */
  setenv("DOCKER_CONFIG", in_tmp("dc"), 1);
  assert_int_equal(mkdir(in_tmp("dc"), 0700), 0);
  write_file(in_tmp("dc/config.json"), "{\"credsStore\":\"flnone\"}", 0600);
  expect_basic("podman.example.com", "pod", "man", "containers/auth.json");
  expect_error("nowhere.example.com", NULL, FL_ENOT_FOUND,
               "docker-credential-flnone has no credentials for "
               "nowhere.example.com (looked in: ");
}

/* ---- malformed files ----------------------------------------------------- */

static void test_malformed(void **state) {
  (void)state;
  docker_config("bad-json");
  setenv("REGISTRY_AUTH_FILE", fixture("containers/auth.json"), 1);
  /* a real error: no fall-through to auth.json */
  expect_error("podman.example.com", NULL, FL_EINVALID,
               "bad-json/config.json: invalid JSON at line 2");
  fl_credentials c;
  fl_error err = {0};
  fl_credentials_lookup("x.example.com", NULL, &c, &err);
  assert_null(strstr(err.msg, "c2VjcmV0")); /* never quote the content */

  docker_config("bad-types");
  expect_error("x.example.com", NULL, FL_EINVALID,
               "bad-types/config.json: \"auths\" is not an object");
  docker_config("not-object");
  expect_error("x.example.com", NULL, FL_EINVALID,
               "not-object/config.json: not a JSON object");
  docker_config("bad-entry");
  expect_error("b64.example.com", NULL, FL_EINVALID,
               "auths[\"b64.example.com\"].auth is not valid base64");
  expect_error("nocolon.example.com", NULL, FL_EINVALID,
               "auths[\"nocolon.example.com\"].auth does not decode to "
               "username:password");
  expect_error("num.example.com", NULL, FL_EINVALID,
               "auths[\"num.example.com\"].auth is not a string");
  expect_error("str.example.com", NULL, FL_EINVALID,
               "auths[\"str.example.com\"] is not an object");
  /* entries for other hosts do not matter */
  expect_error("fine.example.com", NULL, FL_ENOT_FOUND, "no credentials");

  /* unreadable: config.json is a directory */
  assert_int_equal(mkdir(in_tmp("dc"), 0700), 0);
  assert_int_equal(mkdir(in_tmp("dc/config.json"), 0700), 0);
  setenv("DOCKER_CONFIG", in_tmp("dc"), 1);
  expect_error("x.example.com", NULL, FL_EIO, "dc/config.json");
  /* helper names must be strings */
  assert_int_equal(rmdir(in_tmp("dc/config.json")), 0);
  write_file(in_tmp("dc/config.json"),
             "{\"credHelpers\":{\"x.example.com\":7}}", 0600);
  expect_error("x.example.com", NULL, FL_EINVALID,
               "credHelpers[\"x.example.com\"] is not a helper name");
  write_file(in_tmp("dc/config.json"), "{\"credsStore\":[]}", 0600);
  expect_error("x.example.com", NULL, FL_EINVALID,
               "\"credsStore\" is not a string");
  write_file(in_tmp("dc/config.json"), "", 0600);
  expect_error("x.example.com", NULL, FL_EINVALID, "invalid JSON");
  expect_error("", NULL, FL_EINVALID, "without a registry host");
  expect_error(NULL, NULL, FL_EINVALID, "without a registry host");
}

static void test_clear(void **state) {
  (void)state;
  fl_credentials c = {0};
  c.username = strdup("u");
  c.password = strdup("p");
  c.identity_token = strdup("i");
  c.registry_token = strdup("r");
  snprintf(c.source, sizeof c.source, "somewhere");
  fl_credentials_clear(&c);
  assert_null(c.username);
  assert_null(c.password);
  assert_null(c.identity_token);
  assert_null(c.registry_token);
  assert_string_equal(c.source, "");
  fl_credentials_clear(NULL);
  assert_int_equal(fl_credentials_is_bearer(NULL), 0);
  assert_string_equal(fl_credentials_identity(NULL), "");
  assert_string_equal(fl_credentials_identity(&c), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_docker_auths, setup, teardown),
      cmocka_unit_test_setup_teardown(test_docker_config_location, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_docker_helpers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_helper_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_explicit_env, setup, teardown),
      cmocka_unit_test_setup_teardown(test_explicit_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_explicit_helper_and_conflicts, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_containers_auth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
      cmocka_unit_test(test_clear),
  };
  int rc = cmocka_run_group_tests_name("credentials", tests, NULL, NULL);
  free(orig_path);
  return rc;
}
