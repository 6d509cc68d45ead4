/*
 * test_fsutil.c - the one file-system layer (src/core/fsutil.c) on real
 * files: atomic replacement (the old file survives every failure and no
 * temp file stays behind), mkdir -p, whole-file reads under a cap (regular
 * files and pipes), and the messages for a read-only file system, a full
 * one and a missing parent. The read-only and full file systems are real
 * tmpfs mounts made in a child process inside its own mount namespace (a
 * user namespace too when not root); where the kernel allows neither, those
 * cases are skipped, not faked.
 */
#define _GNU_SOURCE /* unshare, CLONE_NEWNS */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fsutil.h"

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/fl-test-fsutil-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *in_dir(const char *name) {
  static char path[4][PATH_MAX];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, PATH_MAX, "%s/%s", dir, name);
  return p;
}

static void write_plain(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
}

/* The whole file as a string (static buffer), or NULL if it is absent. */
static const char *slurp(const char *path) {
  static char buf[4096];
  FILE *fp = fopen(path, "r");
  if (!fp)
    return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

/* Entries of d whose name holds ".tmp-" (temp files left behind). */
static int temps_in(const char *d) {
  DIR *dp = opendir(d);
  struct dirent *e;
  int n = 0;
  if (!dp)
    return -1;
  while ((e = readdir(dp)))
    if (strstr(e->d_name, ".tmp-"))
      n++;
  closedir(dp);
  return n;
}

static mode_t mode_of(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_mode & 07777;
}

/* ---- atomic writes ---------------------------------------------------- */

static void test_write_atomic(void **state) {
  fl_error err = {FL_OK, ""};
  const char *f = in_dir("state.json");
  (void)state;
  assert_int_equal(fl_fs_write_atomic(f, "one", 3, &err), FL_OK);
  assert_string_equal(slurp(f), "one");
  assert_int_equal(mode_of(f), 0644);
  assert_int_equal(chmod(f, 0600), 0);
  assert_int_equal(fl_fs_write_atomic(f, "two!", 4, &err), FL_OK);
  assert_string_equal(slurp(f), "two!");
  assert_int_equal(mode_of(f), 0600); /* an existing file keeps its mode */
  assert_int_equal(fl_fs_write_atomic(f, "", 0, &err), FL_OK);
  assert_string_equal(slurp(f), "");
  assert_int_equal(temps_in(dir), 0);
  /* a relative name is written in the current directory */
  char cwd[PATH_MAX];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0);
  assert_int_equal(fl_fs_write_atomic("rel", "r", 1, &err), FL_OK);
  assert_int_equal(chdir(cwd), 0);
  assert_string_equal(slurp(in_dir("rel")), "r");
}

static void test_write_missing_parent(void **state) {
  fl_error err = {FL_OK, ""};
  (void)state;
  assert_int_equal(fl_fs_write_atomic(in_dir("no/such/f"), "x", 1, &err),
                   FL_EIO);
  assert_int_equal(err.code, FL_EIO);
  char want[2 * PATH_MAX];
  snprintf(
      want, sizeof want,
      "writing %s/no/such/f: cannot create a temporary file in %s/no/such: ",
      dir, dir);
  assert_non_null(strstr(err.msg, want));
  assert_non_null(strstr(err.msg, strerror(ENOENT)));
  /* not a file name, a path too long: INVALID, nothing created */
  assert_int_equal(fl_fs_write_atomic(in_dir("sub/"), "x", 1, &err),
                   FL_EINVALID);
  assert_non_null(strstr(err.msg, "not a file name"));
  char longp[PATH_MAX + 10];
  memset(longp, 'a', sizeof longp - 1);
  longp[sizeof longp - 1] = '\0';
  assert_int_equal(fl_fs_write_atomic(longp, "x", 1, &err), FL_EINVALID);
  assert_non_null(strstr(err.msg, "path too long"));
  assert_int_equal(temps_in(dir), 0);
}

/* A directory in the way: the rename fails, the temp file goes. */
static void test_write_rename_fails(void **state) {
  fl_error err = {FL_OK, ""};
  const char *d = in_dir("adir");
  (void)state;
  assert_int_equal(mkdir(d, 0755), 0);
  write_plain(in_dir("adir/x"), "keep");
  assert_int_equal(fl_fs_write_atomic(d, "data", 4, &err), FL_EIO);
  assert_non_null(strstr(err.msg, "cannot rename the temporary file over"));
  assert_non_null(strstr(err.msg, d));
  assert_string_equal(slurp(in_dir("adir/x")), "keep");
  assert_int_equal(temps_in(dir), 0);
}

/* A write that fails half-way (the file-size limit, which holds for root
 * too) leaves the old content whole and no temp file. */
static void test_failed_write_keeps_old_file(void **state) {
  fl_error err = {FL_OK, ""};
  const char *f = in_dir("precious");
  struct rlimit old, small = {8192, 8192};
  static char big[65536];
  (void)state;
  write_plain(f, "the old content");
  memset(big, 'x', sizeof big);
  signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  small.rlim_max = old.rlim_max;
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  fl_code rc = fl_fs_write_atomic(f, big, sizeof big, &err);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, SIG_DFL);
  assert_int_equal(rc, FL_EIO);
  assert_non_null(strstr(err.msg, "cannot write"));
  assert_non_null(strstr(err.msg, f));
  assert_string_equal(slurp(f), "the old content");
  assert_int_equal(temps_in(dir), 0);
}

/* The temp-file API: discard leaves the target alone; commit replaces. */
static void test_temp_api(void **state) {
  fl_error err = {FL_OK, ""};
  fl_fs_temp t;
  const char *f = in_dir("blob");
  (void)state;
  write_plain(f, "old");
  assert_int_equal(fl_fs_temp_open(&t, f, 0600, &err), FL_OK);
  assert_int_equal(fl_fs_write_all(t.fd, "new", 3, f, &err), FL_OK);
  assert_int_equal(temps_in(dir), 1);
  fl_fs_temp_discard(&t);
  fl_fs_temp_discard(&t); /* twice is fine */
  assert_string_equal(slurp(f), "old");
  assert_int_equal(temps_in(dir), 0);
  assert_int_equal(fl_fs_temp_open(&t, in_dir("fresh"), 0600, &err), FL_OK);
  assert_int_equal(fl_fs_write_all(t.fd, "abc", 3, t.path, &err), FL_OK);
  assert_int_equal(fl_fs_temp_commit(&t, &err), FL_OK);
  fl_fs_temp_discard(&t); /* after commit: does not touch the file */
  assert_string_equal(slurp(in_dir("fresh")), "abc");
  assert_int_equal(mode_of(in_dir("fresh")), 0600);
  assert_int_equal(temps_in(dir), 0);
}

/* ---- mkdir -p ---------------------------------------------------------- */

static void test_mkdir_p(void **state) {
  fl_error err = {FL_OK, ""};
  struct stat st;
  (void)state;
  assert_int_equal(fl_fs_mkdir_p(in_dir("a/b/c"), 0755, &err), FL_OK);
  assert_int_equal(stat(in_dir("a/b/c"), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(fl_fs_mkdir_p(in_dir("a/b/c/"), 0755, &err), FL_OK);
  assert_int_equal(fl_fs_mkdir_p(in_dir("a/b"), 0755, &err), FL_OK);
  write_plain(in_dir("file"), "x");
  assert_int_equal(fl_fs_mkdir_p(in_dir("file/sub"), 0755, &err), FL_EIO);
  char want[PATH_MAX + 80];
  snprintf(want, sizeof want,
           "cannot create directory %s/file: a file of that name is in the "
           "way",
           dir);
  assert_string_equal(err.msg, want);
  assert_int_equal(fl_fs_mkdir_p("", 0755, &err), FL_EINVALID);
  assert_int_equal(fl_fs_mkdir_p(NULL, 0755, &err), FL_EINVALID);
}

/* ---- reading ----------------------------------------------------------- */

static void test_read_file(void **state) {
  fl_error err = {FL_OK, ""};
  char *data = NULL;
  size_t len = 0;
  const char *f = in_dir("ten");
  (void)state;
  write_plain(f, "0123456789");
  assert_int_equal(fl_fs_read_file(f, NULL, 10, 0, &data, &len, &err), FL_OK);
  assert_int_equal(len, 10);
  assert_string_equal(data, "0123456789");
  free(data);
  assert_int_equal(
      fl_fs_read_file(f, "config file", 10, FL_FS_SECRET, &data, &len, &err),
      FL_OK);
  fl_fs_wipe(data, len);
  /* one byte over the cap */
  assert_int_equal(
      fl_fs_read_file(f, "config file", 9, FL_FS_REGULAR, &data, &len, &err),
      FL_ETOO_LARGE);
  assert_null(data);
  assert_int_equal(len, 0);
  char want[PATH_MAX + 80];
  snprintf(want, sizeof want,
           "config file %s is 10 bytes, over the limit of 9 bytes", f);
  assert_string_equal(err.msg, want);
  /* empty */
  write_plain(in_dir("empty"), "");
  assert_int_equal(
      fl_fs_read_file(in_dir("empty"), NULL, 0, 0, &data, &len, &err), FL_OK);
  assert_int_equal(len, 0);
  assert_string_equal(data, "");
  free(data);
  /* missing, a directory */
  assert_int_equal(fl_fs_read_file(in_dir("nope"), "password file", 10, 0,
                                   &data, &len, &err),
                   FL_ENOT_FOUND);
  assert_non_null(strstr(err.msg, "cannot open password file"));
  assert_non_null(strstr(err.msg, strerror(ENOENT)));
  assert_int_equal(
      fl_fs_read_file(in_dir("ten/x"), NULL, 10, 0, &data, &len, &err),
      FL_ENOT_FOUND); /* ENOTDIR */
  assert_int_equal(fl_fs_read_file(dir, NULL, 10, 0, &data, &len, &err),
                   FL_EIO);
  assert_non_null(strstr(err.msg, "it is a directory"));
  assert_null(data);
}

typedef struct writer {
  const char *path;
  size_t bytes;
} writer;

static void *write_fifo(void *arg) {
  writer *w = arg;
  int fd = open(w->path, O_WRONLY);
  char buf[1000];
  memset(buf, 'p', sizeof buf);
  for (size_t left = w->bytes; fd >= 0 && left > 0;) {
    size_t n = left < sizeof buf ? left : sizeof buf;
    ssize_t r = write(fd, buf, n);
    if (r <= 0)
      break;
    left -= (size_t)r;
  }
  if (fd >= 0)
    close(fd);
  return NULL;
}

/* A pipe has no size to stat: the cap holds while reading. */
static void read_fifo(const char *fifo, size_t bytes, size_t max,
                      unsigned flags, fl_code want, size_t want_len) {
  pthread_t th;
  writer w = {fifo, bytes};
  fl_error err = {FL_OK, ""};
  char *data = NULL;
  size_t len = 0;
  signal(SIGPIPE, SIG_IGN);
  assert_int_equal(pthread_create(&th, NULL, write_fifo, &w), 0);
  fl_code rc = fl_fs_read_file(fifo, "pipe", max, flags, &data, &len, &err);
  if (rc != FL_OK) {
    /* let the writer finish: open and drain what is left */
    int fd = open(fifo, O_RDONLY | O_NONBLOCK);
    char buf[4096];
    while (fd >= 0 && read(fd, buf, sizeof buf) > 0)
      ;
    if (fd >= 0)
      close(fd);
  }
  pthread_join(th, NULL);
  assert_int_equal(rc, want);
  assert_int_equal(len, want_len);
  if (rc == FL_ETOO_LARGE)
    assert_non_null(strstr(err.msg, "is larger than the limit of"));
  if (rc == FL_EINVALID)
    assert_non_null(strstr(err.msg, "not a regular file"));
  if (data)
    assert_int_equal(strlen(data), want_len);
  fl_fs_wipe(data, len);
}

static void test_read_pipe(void **state) {
  const char *fifo = in_dir("fifo");
  (void)state;
  assert_int_equal(mkfifo(fifo, 0600), 0);
  read_fifo(fifo, 100000, 100000, FL_FS_SECRET, FL_OK, 100000);
  read_fifo(fifo, 100001, 100000, FL_FS_SECRET, FL_ETOO_LARGE, 0);
  read_fifo(fifo, 10, 100000, 0, FL_OK, 10);
}

static void test_read_regular_only(void **state) {
  fl_error err = {FL_OK, ""};
  char *data = NULL;
  size_t len = 0;
  (void)state;
  /* /dev/null is not a regular file: FL_FS_REGULAR refuses it before
   * reading, without it it reads as empty */
  assert_int_equal(
      fl_fs_read_file("/dev/null", NULL, 10, FL_FS_REGULAR, &data, &len, &err),
      FL_EINVALID);
  assert_non_null(strstr(err.msg, "not a regular file"));
  assert_int_equal(fl_fs_read_file("/dev/null", NULL, 10, 0, &data, &len, &err),
                   FL_OK);
  assert_int_equal(len, 0);
  free(data);
}

/* ---- errors ------------------------------------------------------------ */

static void test_error_messages(void **state) {
  fl_error err;
  (void)state;
  assert_int_equal(fl_fs_code(ENOENT), FL_ENOT_FOUND);
  assert_int_equal(fl_fs_code(ENOTDIR), FL_ENOT_FOUND);
  assert_int_equal(fl_fs_code(ENOMEM), FL_ENOMEM);
  assert_int_equal(fl_fs_code(EIO), FL_EIO);
  assert_int_equal(fl_fs_error(&err, FL_OK, ENOSPC, "write", "/x/y"), FL_EIO);
  assert_non_null(strstr(err.msg, "cannot write /x/y: "));
  assert_non_null(strstr(err.msg, "(the file system is full)"));
  fl_fs_error(&err, FL_EIO, EDQUOT, "write", "/x/y");
  assert_non_null(strstr(err.msg, "(the disk quota is used up)"));
  fl_fs_error(&err, FL_EIO, EROFS, "create directory", "/x/y");
  assert_non_null(strstr(err.msg, "mounted read-only"));
  assert_int_equal(fl_fs_error(&err, FL_OK, ENOENT, "open", "/x"),
                   FL_ENOT_FOUND);
  assert_int_equal(err.code, FL_ENOT_FOUND);
  assert_int_equal(fl_fs_read_only(dir), 0);
  assert_int_equal(fl_fs_read_only(in_dir("not/yet/there")), 0);
}

/* Not root: a directory without write permission says so. */
static void test_permission_denied(void **state) {
  fl_error err = {FL_OK, ""};
  (void)state;
  if (geteuid() == 0)
    skip(); /* root writes anyway; the namespace test covers EROFS */
  const char *d = in_dir("locked");
  assert_int_equal(mkdir(d, 0555), 0);
  assert_int_equal(fl_fs_write_atomic(in_dir("locked/f"), "x", 1, &err),
                   FL_EIO);
  assert_non_null(strstr(err.msg, "check the owner and mode"));
  chmod(d, 0755);
}

/* ---- a real read-only and a real full file system ---------------------- */

#define CHILD_SKIP 77

/* Report a failed check of the child and exit with its line number. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "test_fsutil child: %s:%d: %s (last error: %s)\n",       \
              __FILE__, __LINE__, #cond, err.msg);                             \
      _exit(__LINE__ % 200 + 1);                                               \
    }                                                                          \
  } while (0)

static int write_proc(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Not root: a user namespace where we are root, mapped to our own ids (an
 * unmapped owner cannot create files). */
static int user_namespace(void) {
  char map[64];
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
    return -1;
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
  if (write_proc("/proc/self/uid_map", map) != 0)
    return -1;
  write_proc("/proc/self/setgroups", "deny\n");
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
  return write_proc("/proc/self/gid_map", map);
}

/* Its own mount namespace, with propagation to ours cut; 0 on success. */
static int private_mounts(void) {
  if (geteuid() == 0 ? unshare(CLONE_NEWNS) != 0 : user_namespace() != 0)
    return -1;
  return mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

static void child_checks(const char *ro, const char *full) {
  fl_error err = {FL_OK, ""};
  char path[PATH_MAX], sub[PATH_MAX];
  static char big[256 * 1024];
  /* read-only: a tmpfs with one file, remounted ro */
  if (mount("tmpfs", ro, "tmpfs", 0, "size=64k") != 0)
    _exit(CHILD_SKIP);
  snprintf(path, sizeof path, "%s/state.json", ro);
  snprintf(sub, sizeof sub, "%s/sub/dir", ro);
  CHECK(fl_fs_write_atomic(path, "old", 3, &err) == FL_OK);
  CHECK(fl_fs_mkdir_p(sub, 0755, &err) == FL_OK);
  if (mount("tmpfs", ro, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0)
    _exit(CHILD_SKIP);
  CHECK(fl_fs_read_only(ro) == 1);
  CHECK(fl_fs_read_only(path) == 1);
  CHECK(fl_fs_read_only(sub) == 1);
  CHECK(fl_fs_write_atomic(path, "new", 3, &err) == FL_EIO);
  CHECK(strstr(err.msg, "cannot create a temporary file in") != NULL);
  CHECK(strstr(err.msg, "mounted read-only: use a directory on a writable") !=
        NULL);
  CHECK(fl_fs_mkdir_p(sub, 0755, &err) == FL_OK); /* it exists: fine */
  snprintf(sub, sizeof sub, "%s/sub/new", ro);
  CHECK(fl_fs_mkdir_p(sub, 0755, &err) == FL_EIO);
  CHECK(strstr(err.msg, "cannot create directory") != NULL);
  CHECK(strstr(err.msg, "mounted read-only") != NULL);
  char *data = NULL;
  size_t len = 0;
  CHECK(fl_fs_read_file(path, NULL, 100, 0, &data, &len, &err) == FL_OK);
  CHECK(len == 3 && strcmp(data, "old") == 0); /* reading still works */
  free(data);
  /* full: a 64 KiB tmpfs, an old file, a new content that does not fit */
  if (mount("tmpfs", full, "tmpfs", 0, "size=64k") != 0)
    _exit(CHILD_SKIP);
  snprintf(path, sizeof path, "%s/precious", full);
  CHECK(fl_fs_write_atomic(path, "old content", 11, &err) == FL_OK);
  memset(big, 'b', sizeof big);
  CHECK(fl_fs_write_atomic(path, big, sizeof big, &err) == FL_EIO);
  CHECK(strstr(err.msg, "(the file system is full)") != NULL);
  CHECK(fl_fs_read_file(path, NULL, 100, 0, &data, &len, &err) == FL_OK);
  CHECK(strcmp(data, "old content") == 0);
  free(data);
  CHECK(temps_in(full) == 0);
  _exit(0);
}

static void test_read_only_and_full_fs(void **state) {
  char ro[300], full[300];
  int status = 0;
  (void)state;
  snprintf(ro, sizeof ro, "%s/ro", dir);
  snprintf(full, sizeof full, "%s/full", dir);
  assert_int_equal(mkdir(ro, 0755), 0);
  assert_int_equal(mkdir(full, 0755), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (private_mounts() != 0)
      _exit(CHILD_SKIP);
    child_checks(ro, full);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  if (WEXITSTATUS(status) == CHILD_SKIP) {
    fprintf(stderr, "test_fsutil: no mount namespace here; skipping the "
                    "read-only and full file-system checks\n");
    skip();
  }
  assert_int_equal(WEXITSTATUS(status), 0);
  /* the mounts were the child's: nothing of them is left here */
  assert_int_equal(temps_in(ro), 0);
  assert_null(slurp(in_dir("ro/state.json")));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_missing_parent, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_rename_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_write_keeps_old_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_temp_api, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_pipe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_regular_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_permission_denied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_only_and_full_fs, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
