/*
 * credentials.c - find a registry's credentials: explicit settings, the
 * Docker config, the containers auth file, credential helpers (see
 * credentials.h for the order and the matching rules).
 *
 * Secrets pass through three kinds of buffer here: files read whole (the
 * config files, a password file), a helper's stdout, and jansson's parsed
 * strings. Every one of them is wiped before it is freed, and no error
 * message ever quotes them: messages name the file, the key, the variable or
 * the helper, and for a failed helper the first line of what it printed on
 * failure. Helpers are spawned with posix_spawnp (no shell), get the server
 * URL on a socket as stdin (a helper that exits early cannot SIGPIPE us),
 * and are killed when they overrun the timeout or the 1 MiB output bound.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "registry/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/fsutil.h"

#define HELPER_PREFIX "docker-credential-"
#define HELPER_OUT_MAX (1024 * 1024)
#define HELPER_ERR_KEEP 512
#define HELPER_TIMEOUT_MS 30000
#define CONFIG_MAX (16 * 1024 * 1024)
#define PASSWORD_FILE_MAX (1024 * 1024)
#define NOT_FOUND_TEXT "credentials not found in native keychain"
#define HUB_SERVER "https://index.docker.io/v1/"
#define TOKEN_USERNAME "<token>"
#define PATH_BUF 4096

static atomic_int helper_timeout_ms = HELPER_TIMEOUT_MS;

void fl_credentials_set_helper_timeout(int ms) {
  atomic_store(&helper_timeout_ms, ms > 0 ? ms : HELPER_TIMEOUT_MS);
}

/* ---- small helpers ------------------------------------------------------- */

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

void fl_credentials_clear(fl_credentials *c) {
  if (!c)
    return;
  free(c->username);
  free_secret(c->password);
  free_secret(c->identity_token);
  free_secret(c->registry_token);
  memset(c, 0, sizeof *c);
}

static int nonempty(const char *s) { return s && *s; }

int fl_credentials_is_bearer(const fl_credentials *c) {
  return c && nonempty(c->registry_token);
}

const char *fl_credentials_identity(const fl_credentials *c) {
  if (!c)
    return "";
  if (nonempty(c->username))
    return c->username;
  if (nonempty(c->password) || nonempty(c->identity_token) ||
      nonempty(c->registry_token))
    return c->source;
  return "";
}

static char lower(char c) {
  if (c >= 'A' && c <= 'Z')
    return (char)(c + ('a' - 'A'));
  return c;
}

static int ieqn(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lower(b[i]))
      return 0;
  return 1;
}

static int ieq(const char *a, const char *b) {
  size_t n = strlen(a);
  return n == strlen(b) && ieqn(a, b, n);
}

static int is_hub(const char *host) {
  return ieq(host, "docker.io") || ieq(host, "index.docker.io") ||
         ieq(host, "registry-1.docker.io");
}

/* The server URL credential stores know a registry by. */
static const char *server_url(const char *host) {
  return is_hub(host) ? HUB_SERVER : host;
}

/* Copy s, wiping nothing; NULL stays NULL. *oom set on failure. */
static char *dup_or_null(const char *s, int *oom) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *oom = 1;
  return d;
}

/* ---- files --------------------------------------------------------------- */

/* A credentials file (config.json, a password file) through the one fs
 * layer, every intermediate buffer wiped; free the result with fl_fs_wipe.
 * FL_ENOT_FOUND if it does not exist, with err not set: the callers decide
 * what a missing file means. */
static fl_code read_file(const char *path, size_t max, const char *what,
                         char **data, size_t *len, fl_error *err) {
  fl_error e = {FL_OK, ""};
  fl_code rc = fl_fs_read_file(path, what, max, FL_FS_SECRET, data, len, &e);
  if (rc != FL_OK && rc != FL_ENOT_FOUND && err)
    *err = e;
  return rc;
}

/* Wipe the string members of an object (jansson allocates string values
 * on the heap, so the const can be cast away). */
static void wipe_strings(json_t *obj) {
  for (void *it = json_object_iter(obj); it;
       it = json_object_iter_next(obj, it)) {
    json_t *v = json_object_iter_value(it);
    if (json_is_string(v))
      OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
  }
}

/* Free a parsed config or helper answer, wiping its strings first down to
 * the depth where secrets live: root.auths.KEY.auth and the like. */
static void json_free_wiped(json_t *root) {
  wipe_strings(root);
  for (void *i1 = json_object_iter(root); i1;
       i1 = json_object_iter_next(root, i1)) {
    json_t *v1 = json_object_iter_value(i1);
    wipe_strings(v1);
    for (void *i2 = json_object_iter(v1); i2;
         i2 = json_object_iter_next(v1, i2))
      wipe_strings(json_object_iter_value(i2));
  }
  json_decref(root);
}

/* What went wrong, without jansson's text (it quotes the input near the
 * error, and the input is full of secrets). */
static const char *json_problem(const json_error_t *je) {
  switch (json_error_code(je)) {
  case json_error_premature_end_of_input:
    return "unexpected end of input";
  case json_error_end_of_input_expected:
    return "text after the end of the JSON value";
  case json_error_invalid_utf8:
    return "invalid UTF-8";
  case json_error_null_character:
  case json_error_null_byte_in_key:
    return "NUL character";
  case json_error_duplicate_key:
    return "duplicate key";
  case json_error_numeric_overflow:
    return "number out of range";
  case json_error_stack_overflow:
    return "nested too deeply";
  case json_error_out_of_memory:
    return "out of memory";
  default:
    return "invalid syntax";
  }
}

/* ---- credential helpers ------------------------------------------------- */

typedef struct helper_run {
  char *out; /* stdout, NUL-terminated, wiped when freed */
  size_t out_len;
  size_t out_cap;
  char errtext[HELPER_ERR_KEEP]; /* the start of stderr */
  size_t err_len;
  int status; /* waitpid status */
  int timed_out;
  int too_large;
} helper_run;

static void helper_run_free(helper_run *r) {
  if (r->out) {
    OPENSSL_cleanse(r->out, r->out_cap);
    free(r->out);
  }
  memset(r, 0, sizeof *r);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Append to the stdout buffer; 0 when over HELPER_OUT_MAX or out of memory
 * (too_large set for the former). */
static int out_append(helper_run *r, const char *p, size_t n) {
  if (r->out_len + n > HELPER_OUT_MAX) {
    r->too_large = 1;
    return 0;
  }
  if (r->out_len + n + 1 > r->out_cap) {
    size_t cap = r->out_cap ? r->out_cap : 4096;
    while (cap < r->out_len + n + 1)
      cap *= 2;
    char *np = malloc(cap);
    if (!np)
      return 0;
    if (r->out) {
      memcpy(np, r->out, r->out_len);
      OPENSSL_cleanse(r->out, r->out_cap);
      free(r->out);
    }
    r->out = np;
    r->out_cap = cap;
  }
  memcpy(r->out + r->out_len, p, n);
  r->out_len += n;
  r->out[r->out_len] = '\0';
  return 1;
}

/* Read stdout and stderr until both close, the deadline passes or stdout
 * grows too large. Returns 0 on out of memory. */
static int collect_output(int outfd, int errfd, long long deadline,
                          helper_run *r) {
  struct pollfd pf[2] = {{outfd, POLLIN, 0}, {errfd, POLLIN, 0}};
  char buf[8192];
  int ok = 1;
  while (ok && (pf[0].fd >= 0 || pf[1].fd >= 0)) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      r->timed_out = 1;
      break;
    }
    int n = poll(pf, 2, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    for (int i = 0; i < 2 && ok; i++) {
      if (pf[i].fd < 0 || !pf[i].revents)
        continue;
      ssize_t got = read(pf[i].fd, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (got <= 0) {
        pf[i].fd = -1;
      } else if (i == 0) {
        ok = out_append(r, buf, (size_t)got);
      } else if (r->err_len + 1 < sizeof r->errtext) {
        size_t keep = sizeof r->errtext - 1 - r->err_len;
        if ((size_t)got < keep)
          keep = (size_t)got;
        memcpy(r->errtext + r->err_len, buf, keep);
        r->err_len += keep;
        r->errtext[r->err_len] = '\0';
      }
    }
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return ok || r->too_large;
}

/* Reap the child, killing it first if it overran or is still running at
 * the deadline. */
static void reap(pid_t pid, long long deadline, int kill_now, helper_run *r) {
  if (kill_now)
    kill(pid, SIGKILL);
  for (;;) {
    pid_t w = waitpid(pid, &r->status, kill_now ? 0 : WNOHANG);
    if (w == pid)
      return;
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) { /* ECHILD: SIGCHLD ignored, nothing to reap */
      r->status = 0;
      return;
    }
    if (now_ms() >= deadline) {
      r->timed_out = 1;
      kill(pid, SIGKILL);
      kill_now = 1;
      continue;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static fl_code spawn_setup(posix_spawn_file_actions_t *fa,
                           posix_spawnattr_t *attr, int in, int out,
                           int errfd) {
  sigset_t none, dfl;
  sigemptyset(&none);
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  sigaddset(&dfl, SIGINT);
  sigaddset(&dfl, SIGTERM);
  sigaddset(&dfl, SIGCHLD);
  if (posix_spawn_file_actions_adddup2(fa, in, 0) ||
      posix_spawn_file_actions_adddup2(fa, out, 1) ||
      posix_spawn_file_actions_adddup2(fa, errfd, 2) ||
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
      posix_spawn_file_actions_addclosefrom_np(fa, 3) ||
#endif
      posix_spawnattr_setsigmask(attr, &none) ||
      posix_spawnattr_setsigdefault(attr, &dfl) ||
      posix_spawnattr_setflags(attr,
                               POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    return FL_ENOMEM;
  return FL_OK;
}

/* Move a child's end off fds 0-2 (free when our own stdio is closed), so
 * that the dup2 actions onto 0, 1 and 2 cannot clobber one another. */
static int above_stdio(int *fd) {
  if (*fd > 2)
    return 0;
  int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0)
    return -1;
  close(*fd);
  *fd = moved;
  return 0;
}

/* Run docker-credential-NAME get with server on stdin and collect what it
 * prints. FL_OK means it ran (whatever its exit status); errors are for a
 * helper that could not be started. */
static fl_code helper_exec(const char *prog, const char *server, helper_run *r,
                           fl_error *err) {
  fl_code rc = FL_OK;
  int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
  int have_fa = 0, have_attr = 0;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  pid_t pid = -1;
  long long deadline = now_ms() + atomic_load(&helper_timeout_ms);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
      pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
      above_stdio(&in[1]) != 0 || above_stdio(&outp[1]) != 0 ||
      above_stdio(&errp[1]) != 0) {
    rc = fl_error_set(err, FL_EIO, "cannot run %s: %s", prog, strerror(errno));
    goto out;
  }
  have_fa = posix_spawn_file_actions_init(&fa) == 0;
  have_attr = posix_spawnattr_init(&attr) == 0;
  if (!have_fa || !have_attr ||
      spawn_setup(&fa, &attr, in[1], outp[1], errp[1]) != FL_OK) {
    rc = fl_error_set(err, FL_ENOMEM, "cannot run %s: out of memory", prog);
    goto out;
  }
  char *argv[] = {(char *)prog, (char *)"get", NULL};
  int e = posix_spawnp(&pid, prog, &fa, &attr, argv, environ);
  if (e != 0) {
    pid = -1;
    if (e == ENOENT)
      rc = fl_error_set(err, FL_EUNAUTHORIZED,
                        "credential helper %s not found on PATH (needed for "
                        "%s)",
                        prog, server);
    else
      rc = fl_error_set(err, FL_EUNAUTHORIZED,
                        "cannot run credential helper %s (needed for %s): %s",
                        prog, server, strerror(e));
    goto out;
  }
  close(in[1]);
  close(outp[1]);
  close(errp[1]);
  in[1] = outp[1] = errp[1] = -1;
  /* A few bytes into an empty socket buffer: this never blocks. A helper
   * that exits without reading gives EPIPE, not a signal. */
  size_t slen = strlen(server);
  char line[PATH_BUF];
  int llen = snprintf(line, sizeof line, "%s\n", server);
  if (llen > 0 && (size_t)llen == slen + 1)
    (void)send(in[0], line, (size_t)llen, MSG_NOSIGNAL);
  close(in[0]);
  in[0] = -1;
  if (!collect_output(outp[0], errp[0], deadline, r)) {
    reap(pid, deadline, 1, r);
    rc = fl_error_set(err, FL_ENOMEM, "out of memory reading %s", prog);
    goto out;
  }
  reap(pid, deadline, r->timed_out || r->too_large, r);
out:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (outp[i] >= 0)
      close(outp[i]);
    if (errp[i] >= 0)
      close(errp[i]);
  }
  if (have_fa)
    posix_spawn_file_actions_destroy(&fa);
  if (have_attr)
    posix_spawnattr_destroy(&attr);
  return rc;
}

/* The first line of s, control characters replaced, at most max bytes. */
static void first_line(const char *s, char *line, size_t max) {
  size_t n = 0;
  while (*s == '\n' || *s == '\r' || *s == ' ')
    s++;
  for (; s[n] && s[n] != '\n' && s[n] != '\r' && n + 1 < max; n++) {
    line[n] = s[n];
    if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
      line[n] = '?';
  }
  line[n] = '\0';
}

/* A helper's JSON answer into out. */
static fl_code helper_parse(const char *prog, const char *server,
                            const helper_run *r, fl_credentials *out,
                            fl_error *err) {
  fl_code rc = FL_OK;
  json_error_t je;
  json_t *root = json_loadb(r->out ? r->out : "", r->out_len, 0, &je);
  const char *user = json_string_value(json_object_get(root, "Username"));
  const char *secret = json_string_value(json_object_get(root, "Secret"));
  if (!json_is_object(root) || !secret) {
    rc = fl_error_set(err, FL_EUNAUTHORIZED,
                      "credential helper %s gave no credentials for %s: its "
                      "output is not a JSON object with a \"Secret\" string",
                      prog, server);
    goto out;
  }
  if (!nonempty(secret)) {
    rc = fl_error_set(err, FL_ENOT_FOUND,
                      "credential helper %s has no credentials for %s", prog,
                      server);
    goto out;
  }
  int oom = 0;
  if (user && strcmp(user, TOKEN_USERNAME) == 0) {
    out->identity_token = dup_or_null(secret, &oom);
  } else if (nonempty(user)) {
    out->username = dup_or_null(user, &oom);
    out->password = dup_or_null(secret, &oom);
  } else {
    rc = fl_error_set(err, FL_EUNAUTHORIZED,
                      "credential helper %s gave a secret for %s but no "
                      "username",
                      prog, server);
    goto out;
  }
  if (oom) {
    fl_credentials_clear(out);
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
    goto out;
  }
  snprintf(out->source, sizeof out->source, "credential helper %s", prog);
out:
  json_free_wiped(root);
  return rc;
}

/* Run helper NAME for host: FL_OK with out filled, FL_ENOT_FOUND when the
 * helper has nothing for this registry, FL_EUNAUTHORIZED when it fails. */
static fl_code run_helper(const char *name, const char *host,
                          fl_credentials *out, fl_error *err) {
  fl_code rc;
  helper_run r;
  char prog[100]; /* fits in fl_credentials.source with its prefix */
  char line[200];
  const char *server = server_url(host);
  memset(&r, 0, sizeof r);
  if (!nonempty(name) || strchr(name, '/') ||
      strlen(name) + sizeof HELPER_PREFIX > sizeof prog)
    return fl_error_set(err, FL_EINVALID,
                        "invalid credential helper name \"%.100s\": expected "
                        "the NAME of a docker-credential-NAME program on PATH",
                        name ? name : "");
  snprintf(prog, sizeof prog, HELPER_PREFIX "%s", name);
  rc = helper_exec(prog, server, &r, err);
  if (rc != FL_OK)
    goto out;
  if (r.timed_out) {
    rc = fl_error_set(err, FL_EUNAUTHORIZED,
                      "credential helper %s did not answer for %s within %d "
                      "ms and was killed",
                      prog, server, atomic_load(&helper_timeout_ms));
    goto out;
  }
  if (r.too_large) {
    rc = fl_error_set(err, FL_EUNAUTHORIZED,
                      "credential helper %s printed more than %d bytes for %s "
                      "and was killed",
                      prog, HELPER_OUT_MAX, server);
    goto out;
  }
  int code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
  if (code == 0) {
    rc = helper_parse(prog, server, &r, out, err);
    goto out;
  }
  /* Failure output is an error message, not a secret. */
  if ((r.out && strstr(r.out, NOT_FOUND_TEXT)) ||
      strstr(r.errtext, NOT_FOUND_TEXT)) {
    rc = fl_error_set(err, FL_ENOT_FOUND,
                      "credential helper %s has no credentials for %s", prog,
                      server);
    goto out;
  }
  first_line(r.err_len ? r.errtext : (r.out ? r.out : ""), line, sizeof line);
  if (WIFSIGNALED(r.status))
    rc = fl_error_set(err, FL_EUNAUTHORIZED,
                      "credential helper %s failed for %s: killed by signal "
                      "%d%s%s",
                      prog, server, WTERMSIG(r.status), line[0] ? ": " : "",
                      line);
  else
    rc = fl_error_set(err, FL_EUNAUTHORIZED,
                      "credential helper %s failed for %s (exit status %d)%s%s",
                      prog, server, code, line[0] ? ": " : "", line);
out:
  helper_run_free(&r);
  return rc;
}

/* ---- explicit settings -------------------------------------------------- */

static int settings_empty(const fl_cred_settings *s) {
  return !s || (!nonempty(s->username) && !nonempty(s->password_env) &&
                !nonempty(s->password_file) && !nonempty(s->credential_helper));
}

/* The password file's contents with one trailing newline stripped. */
static fl_code read_password_file(const char *host, const char *path, char **pw,
                                  fl_error *err) {
  char *data = NULL;
  size_t len = 0;
  *pw = NULL;
  fl_code rc =
      read_file(path, PASSWORD_FILE_MAX, "password file", &data, &len, err);
  if (rc == FL_ENOT_FOUND)
    return fl_error_set(err, FL_EIO,
                        "password file %s (password_file for %s) does not "
                        "exist",
                        path, host);
  if (rc != FL_OK)
    return rc;
  size_t n = len;
  if (n > 0 && data[n - 1] == '\n')
    n--;
  if (n > 0 && data[n - 1] == '\r')
    n--;
  if (n == 0 || memchr(data, '\0', n)) {
    rc = fl_error_set(err, FL_EINVALID,
                      "password file %s (password_file for %s) %s", path, host,
                      n == 0 ? "is empty" : "contains a NUL byte");
    fl_fs_wipe(data, len);
    return rc;
  }
  data[n] = '\0';
  *pw = data; /* the caller frees it with free_secret */
  OPENSSL_cleanse(data + n, len - n);
  return FL_OK;
}

static fl_code from_explicit(const char *host, const fl_cred_settings *s,
                             fl_credentials *out, fl_error *err) {
  int env = nonempty(s->password_env), file = nonempty(s->password_file);
  if (nonempty(s->credential_helper)) {
    if (env || file)
      return fl_error_set(err, FL_EINVALID,
                          "credentials for %s: credential_helper and %s "
                          "cannot both be set",
                          host, env ? "password_env" : "password_file");
    return run_helper(s->credential_helper, host, out, err);
  }
  if (env && file)
    return fl_error_set(err, FL_EINVALID,
                        "credentials for %s: password_env and password_file "
                        "cannot both be set",
                        host);
  if (!nonempty(s->username))
    return fl_error_set(err, FL_EINVALID,
                        "credentials for %s: %s is set but username is not",
                        host, env ? "password_env" : "password_file");
  if (!env && !file)
    return fl_error_set(err, FL_EINVALID,
                        "credentials for %s: username is set but neither "
                        "password_env nor password_file",
                        host);
  char *pw = NULL;
  if (env) {
    const char *v = getenv(s->password_env);
    if (!nonempty(v))
      return fl_error_set(err, FL_EINVALID,
                          "credentials for %s: environment variable %s "
                          "(password_env) is %s",
                          host, s->password_env, v ? "empty" : "not set");
    pw = strdup(v);
    if (!pw)
      return fl_error_set(err, FL_ENOMEM, "out of memory");
    snprintf(out->source, sizeof out->source, "password_env %s",
             s->password_env);
  } else {
    fl_code rc = read_password_file(host, s->password_file, &pw, err);
    if (rc != FL_OK)
      return rc;
    snprintf(out->source, sizeof out->source, "password_file %s",
             s->password_file);
  }
  out->password = pw;
  out->username = strdup(s->username);
  if (!out->username) {
    fl_credentials_clear(out);
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  }
  return FL_OK;
}

/* ---- config files ------------------------------------------------------- */

/* How well a config key names host: 2 exactly, 1 after normalising ("https://
 * host/v1/", any spelling of Docker Hub), 0 not at all. Keys with a path
 * other than an API version name a namespace and never match. */
static int key_match(const char *key, const char *host) {
  if (strcmp(key, host) == 0 || (is_hub(host) && strcmp(key, HUB_SERVER) == 0))
    return 2;
  const char *k = key;
  if (ieqn(k, "https://", 8))
    k += 8;
  else if (ieqn(k, "http://", 7))
    k += 7;
  size_t hlen = strcspn(k, "/");
  const char *path = k + hlen;
  if (!(strcmp(path, "") == 0 || strcmp(path, "/") == 0 ||
        strcmp(path, "/v1") == 0 || strcmp(path, "/v1/") == 0 ||
        strcmp(path, "/v2") == 0 || strcmp(path, "/v2/") == 0))
    return 0;
  char kh[256];
  if (hlen == 0 || hlen >= sizeof kh)
    return 0;
  memcpy(kh, k, hlen);
  kh[hlen] = '\0';
  if (ieq(kh, host) || (is_hub(host) && is_hub(kh)))
    return 1;
  return 0;
}

/* The best-matching member of obj for host (first of the best), or NULL. */
static json_t *find_key(json_t *obj, const char *host, const char **keyp) {
  json_t *best = NULL;
  int best_score = 0;
  for (void *it = json_object_iter(obj); it;
       it = json_object_iter_next(obj, it)) {
    const char *key = json_object_iter_key(it);
    int score = key_match(key, host);
    if (score > best_score) {
      best = json_object_iter_value(it);
      best_score = score;
      *keyp = key;
    }
  }
  return best;
}

static int is_b64(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || c == '+' || c == '/';
}

/* Decode standard base64, padding optional, into a NUL-terminated heap
 * buffer (wipe it when done). FL_EINVALID if malformed, FL_ENOMEM. */
static fl_code b64_decode(const char *in, char **out, size_t *outlen) {
  size_t n = 0, pad = 0;
  *out = NULL;
  *outlen = 0;
  while (is_b64((unsigned char)in[n]))
    n++;
  while (in[n + pad] == '=')
    pad++;
  if (in[n + pad] != '\0' || n % 4 == 1 || (pad && (n + pad) % 4 != 0))
    return FL_EINVALID;
  size_t total = (n + 3) / 4 * 4;
  size_t fill = total - n;
  unsigned char *padded = malloc(total + 1);
  unsigned char *dec = malloc(total / 4 * 3 + 1);
  fl_code rc = FL_OK;
  if (!padded || !dec) {
    rc = FL_ENOMEM;
    goto out;
  }
  memcpy(padded, in, n);
  memset(padded + n, '=', fill);
  int r = total ? EVP_DecodeBlock(dec, padded, (int)total) : 0;
  if (r < 0 || (size_t)r < fill) {
    rc = FL_EINVALID;
    goto out;
  }
  *outlen = (size_t)r - fill;
  dec[*outlen] = '\0';
  *out = (char *)dec;
  dec = NULL;
out:
  if (padded) {
    OPENSSL_cleanse(padded, total + 1);
    free(padded);
  }
  if (dec) {
    OPENSSL_cleanse(dec, total / 4 * 3 + 1);
    free(dec);
  }
  return rc;
}

/* path for messages and sources: $HOME shortened to "~". */
static const char *display_path(const char *path, char *buf, size_t n) {
  const char *home = getenv("HOME");
  size_t hl = home ? strlen(home) : 0;
  if (hl > 1 && strncmp(path, home, hl) == 0 && path[hl] == '/') {
    snprintf(buf, n, "~%s", path + hl);
    return buf;
  }
  return path;
}

/* A string member of an auths entry: FL_OK with *s (NULL when absent),
 * FL_EINVALID when present but not a string. */
static fl_code entry_string(const char *path, const char *key, json_t *entry,
                            const char *name, const char **s, fl_error *err) {
  json_t *v = json_object_get(entry, name);
  *s = json_string_value(v);
  if (v && !*s)
    return fl_error_set(err, FL_EINVALID,
                        "%s: auths[\"%.100s\"].%s is not a string", path, key,
                        name);
  return FL_OK;
}

/* auth ("base64(user:password)") split at its first colon, into *buf
 * (wipe it) with *user and *pass pointing into it. */
static fl_code decode_auth(const char *path, const char *key, const char *auth,
                           char **buf, const char **user, const char **pass,
                           fl_error *err) {
  size_t len = 0;
  fl_code rc = b64_decode(auth, buf, &len);
  if (rc == FL_ENOMEM)
    return fl_error_set(err, rc, "out of memory reading %s", path);
  if (rc != FL_OK)
    return fl_error_set(err, FL_EINVALID,
                        "%s: auths[\"%.100s\"].auth is not valid base64", path,
                        key);
  char *colon = strchr(*buf, ':');
  if (!colon || strlen(*buf) != len)
    return fl_error_set(err, FL_EINVALID,
                        "%s: auths[\"%.100s\"].auth does not decode to "
                        "username:password",
                        path, key);
  *colon = '\0';
  *user = *buf;
  *pass = colon + 1;
  return FL_OK;
}

/* The credentials in one auths entry. FL_ENOT_FOUND when it holds nothing
 * usable (docker login with a credsStore leaves "{}" behind). */
static fl_code entry_creds(const char *path, const char *key, json_t *entry,
                           fl_credentials *out, fl_error *err) {
  fl_code rc = FL_OK;
  const char *auth, *user, *pass, *idt, *rt;
  char *decoded = NULL;
  int oom = 0;
  if (!json_is_object(entry))
    return fl_error_set(err, FL_EINVALID,
                        "%s: auths[\"%.100s\"] is not an object", path, key);
  if ((rc = entry_string(path, key, entry, "auth", &auth, err)) ||
      (rc = entry_string(path, key, entry, "username", &user, err)) ||
      (rc = entry_string(path, key, entry, "password", &pass, err)) ||
      (rc = entry_string(path, key, entry, "identitytoken", &idt, err)) ||
      (rc = entry_string(path, key, entry, "registrytoken", &rt, err)))
    return rc;
  if (nonempty(rt)) {
    out->registry_token = dup_or_null(rt, &oom);
    goto done;
  }
  if (nonempty(auth) &&
      (rc = decode_auth(path, key, auth, &decoded, &user, &pass, err)))
    goto out;
  if (nonempty(idt)) {
    out->identity_token = dup_or_null(idt, &oom);
    out->username = nonempty(user) ? dup_or_null(user, &oom) : NULL;
  } else if (nonempty(user) && nonempty(pass)) {
    out->username = dup_or_null(user, &oom);
    out->password = dup_or_null(pass, &oom);
  } else {
    rc = FL_ENOT_FOUND;
    goto out;
  }
done:
  if (oom) {
    fl_credentials_clear(out);
    rc = fl_error_set(err, FL_ENOMEM, "out of memory reading %s", path);
    goto out;
  }
  snprintf(out->source, sizeof out->source, "%s auths \"%s\"", path, key);
out:
  free_secret(decoded);
  return rc;
}

/* A member of root that must be an object when present. */
static fl_code object_member(const char *path, json_t *root, const char *name,
                             json_t **obj, fl_error *err) {
  *obj = json_object_get(root, name);
  if (*obj && !json_is_object(*obj))
    return fl_error_set(err, FL_EINVALID, "%s: \"%s\" is not an object", path,
                        name);
  return FL_OK;
}

/* The credentials for host in one Docker config / containers auth file:
 * credHelpers, then auths, then credsStore. FL_ENOT_FOUND when the file is
 * absent or nothing in it applies (err is set only if a helper declined). */
static fl_code from_config_file(const char *fullpath, const char *host,
                                fl_credentials *out, fl_error *err) {
  fl_code rc;
  char *data = NULL;
  size_t len = 0;
  json_t *root = NULL, *helpers, *auths, *v;
  json_error_t je;
  const char *key = NULL;
  char shown[PATH_BUF];
  const char *path = display_path(fullpath, shown, sizeof shown);
  rc = read_file(fullpath, CONFIG_MAX, "config file", &data, &len, err);
  if (rc != FL_OK)
    return rc;
  root = json_loadb(data, len, 0, &je);
  fl_fs_wipe(data, len);
  if (!root)
    return fl_error_set(err, FL_EINVALID,
                        "%s: invalid JSON at line %d, column %d: %s", path,
                        je.line, je.column, json_problem(&je));
  if (!json_is_object(root)) {
    rc = fl_error_set(err, FL_EINVALID, "%s: not a JSON object", path);
    goto out;
  }
  if ((rc = object_member(path, root, "credHelpers", &helpers, err)) ||
      (rc = object_member(path, root, "auths", &auths, err)))
    goto out;
  if (helpers && (v = find_key(helpers, host, &key))) {
    if (!nonempty(json_string_value(v)))
      rc = fl_error_set(err, FL_EINVALID,
                        "%s: credHelpers[\"%.100s\"] is not a helper name",
                        path, key);
    else
      rc = run_helper(json_string_value(v), host, out, err);
    goto out;
  }
  if (auths && (v = find_key(auths, host, &key))) {
    rc = entry_creds(path, key, v, out, err);
    if (rc != FL_ENOT_FOUND)
      goto out;
  }
  v = json_object_get(root, "credsStore");
  if (v && !json_is_string(v)) {
    rc = fl_error_set(err, FL_EINVALID, "%s: \"credsStore\" is not a string",
                      path);
    goto out;
  }
  if (nonempty(json_string_value(v)))
    rc = run_helper(json_string_value(v), host, out, err);
  else
    rc = FL_ENOT_FOUND;
out:
  json_free_wiped(root);
  return rc;
}

/* ---- lookup -------------------------------------------------------------- */

/* dir + "/" + rest into buf; 0 if dir is unset/empty or the result does not
 * fit. */
static int join_path(char *buf, size_t n, const char *dir, const char *rest) {
  if (!nonempty(dir))
    return 0;
  int len = snprintf(buf, n, "%s/%s", dir, rest);
  return len > 0 && (size_t)len < n;
}

typedef struct search {
  const char *host;
  fl_credentials *out;
  fl_error *err;
  char tried[FL_ERROR_MSG_MAX];
  char declined[FL_ERROR_MSG_MAX]; /* the last "helper has none" message */
} search;

/* Look in one file; FL_ENOT_FOUND to go on to the next. */
static fl_code search_file(search *s, const char *path) {
  char shown[PATH_BUF];
  size_t used = strlen(s->tried);
  snprintf(s->tried + used, sizeof s->tried - used, "%s%s", used ? ", " : "",
           display_path(path, shown, sizeof shown));
  fl_error e = {FL_OK, ""};
  fl_code rc = from_config_file(path, s->host, s->out, &e);
  if (rc == FL_ENOT_FOUND) {
    if (e.msg[0])
      memcpy(s->declined, e.msg, sizeof s->declined);
    return rc;
  }
  if (rc != FL_OK)
    fl_error_set(s->err, rc, "%s", e.msg);
  return rc;
}

static fl_code search_files(search *s) {
  char path[PATH_BUF];
  fl_code rc = FL_ENOT_FOUND;
  const char *home = getenv("HOME");
  const char *docker = getenv("DOCKER_CONFIG");
  if (nonempty(docker)
          ? join_path(path, sizeof path, docker, "config.json")
          : join_path(path, sizeof path, home, ".docker/config.json"))
    rc = search_file(s, path);
  if (rc != FL_ENOT_FOUND)
    return rc;
  const char *authfile = getenv("REGISTRY_AUTH_FILE");
  if (nonempty(authfile))
    return search_file(s, authfile);
  if (join_path(path, sizeof path, getenv("XDG_RUNTIME_DIR"),
                "containers/auth.json"))
    rc = search_file(s, path);
  if (rc != FL_ENOT_FOUND)
    return rc;
  if (join_path(path, sizeof path, home, ".config/containers/auth.json"))
    rc = search_file(s, path);
  return rc;
}

fl_code fl_credentials_lookup(const char *host,
                              const fl_cred_settings *explicit_settings,
                              fl_credentials *out, fl_error *err) {
  fl_code rc;
  memset(out, 0, sizeof *out);
  if (!nonempty(host))
    return fl_error_set(err, FL_EINVALID,
                        "credentials lookup without a registry host");
  if (!settings_empty(explicit_settings)) {
    rc = from_explicit(host, explicit_settings, out, err);
  } else {
    search *s = calloc(1, sizeof *s);
    if (!s)
      return fl_error_set(err, FL_ENOMEM, "out of memory");
    s->host = host;
    s->out = out;
    s->err = err;
    rc = search_files(s);
    if (rc == FL_ENOT_FOUND && s->declined[0])
      fl_error_set(err, rc, "%s (looked in: %s)", s->declined, s->tried);
    else if (rc == FL_ENOT_FOUND)
      fl_error_set(err, rc, "no credentials for %s (looked in: %s)", host,
                   s->tried[0] ? s->tried : "no config file: HOME unset");
    free(s);
  }
  if (rc != FL_OK)
    fl_credentials_clear(out);
  return rc;
}
