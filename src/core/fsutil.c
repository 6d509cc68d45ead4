/*
 * fsutil.c - atomic file replacement, mkdir -p, whole-file reads under a
 * cap, and file-system errors that explain themselves (see fsutil.h).
 */
#define _GNU_SOURCE /* mkostemp: temp files created with O_CLOEXEC */

#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define READ_CHUNK 4096
#define LABEL_MAX (PATH_MAX + 64)

fl_code fl_fs_code(int errnum) {
  if (errnum == ENOENT || errnum == ENOTDIR)
    return FL_ENOT_FOUND;
  return errnum == ENOMEM ? FL_ENOMEM : FL_EIO;
}

int fl_fs_read_only(const char *path) {
  char buf[PATH_MAX];
  struct statvfs sv;
  int n = snprintf(buf, sizeof buf, "%s", path ? path : "");
  if (n <= 0 || (size_t)n >= sizeof buf)
    return 0;
  for (;;) {
    if (statvfs(buf, &sv) == 0)
      return (sv.f_flag & ST_RDONLY) != 0;
    if (errno != ENOENT)
      return 0;
    char *slash = strrchr(buf, '/');
    if (!slash)
      return statvfs(".", &sv) == 0 && (sv.f_flag & ST_RDONLY) != 0;
    if (slash == buf) {
      buf[1] = '\0';
      return statvfs(buf, &sv) == 0 && (sv.f_flag & ST_RDONLY) != 0;
    }
    *slash = '\0';
  }
}

/* What an errno means for the user, beyond strerror's few words. */
static const char *errno_hint(int errnum, const char *path) {
  switch (errnum) {
  case EROFS:
    return " (the file system is mounted read-only: use a directory on a "
           "writable one)";
  case ENOSPC:
    return " (the file system is full)";
  case EDQUOT:
    return " (the disk quota is used up)";
  case EACCES:
  case EPERM:
    if (fl_fs_read_only(path))
      return " (the file system is mounted read-only: use a directory on a "
             "writable one)";
    return " (check the owner and mode of the file and its directory)";
  default:
    return "";
  }
}

fl_code fl_fs_error(fl_error *err, fl_code code, int errnum, const char *what,
                    const char *path) {
  if (code == FL_OK)
    code = fl_fs_code(errnum);
  return fl_error_set(err, code, "cannot %s %s: %s%s", what, path,
                      strerror(errnum), errno_hint(errnum, path));
}

static fl_code copy_path(char *dst, const char *src, fl_error *err) {
  size_t n = src ? strlen(src) : 0;
  /* (FL_EINVALID returned as such: the analyzer cannot see that
   * fl_error_set returns the code it is given) */
  if (n == 0) {
    fl_error_set(err, FL_EINVALID, "empty path");
    return FL_EINVALID;
  }
  if (n >= PATH_MAX) {
    fl_error_set(err, FL_EINVALID, "path too long: %.200s...", src);
    return FL_EINVALID;
  }
  memcpy(dst, src, n + 1);
  return FL_OK;
}

/* ---- directories ---------------------------------------------------------- */

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

fl_code fl_fs_mkdir_p(const char *path, mode_t mode, fl_error *err) {
  char buf[PATH_MAX];
  fl_code rc = copy_path(buf, path, err);
  if (rc != FL_OK)
    return rc;
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char saved = *p;
    *p = '\0';
    /* An existing directory is fine even where mkdir would be refused (a
     * read-only parent, no write permission). */
    if (mkdir(buf, mode) != 0) {
      int e = errno;
      if (!is_dir(buf)) {
        if (e == EEXIST)
          return fl_error_set(err, FL_EIO,
                              "cannot create directory %s: a file of that "
                              "name is in the way",
                              buf);
        return fl_fs_error(err, FL_EIO, e, "create directory", buf);
      }
    }
    *p = saved;
    if (!saved)
      break;
  }
  return FL_OK;
}

fl_code fl_fs_fsync_dir(const char *dir, fl_error *err) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return fl_fs_error(err, FL_EIO, errno, "open directory", dir);
  fl_code rc = FL_OK;
  /* some file systems cannot fsync a directory; the rename still stands */
  if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
    rc = fl_fs_error(err, FL_EIO, errno, "fsync directory", dir);
  close(fd);
  return rc;
}

/* ---- reading -------------------------------------------------------------- */

void fl_fs_wipe(char *data, size_t len) {
  if (!data)
    return;
  OPENSSL_cleanse(data, len);
  free(data);
}

/* Grow *buf (of *cap bytes, n used) to ncap; a secret's old block is wiped,
 * never left behind by realloc. */
static int grow(char **buf, size_t *cap, size_t n, size_t ncap,
                unsigned flags) {
  char *p;
  if (!(flags & FL_FS_SECRET)) {
    p = realloc(*buf, ncap);
    if (!p)
      return -1;
  } else {
    p = malloc(ncap);
    if (!p)
      return -1;
    if (*buf) {
      memcpy(p, *buf, n);
      OPENSSL_cleanse(*buf, *cap);
      free(*buf);
    }
  }
  *buf = p;
  *cap = ncap;
  return 0;
}

static void drop(char *buf, size_t cap, unsigned flags) {
  if (flags & FL_FS_SECRET)
    fl_fs_wipe(buf, cap);
  else
    free(buf);
}

/* fl_fs_error for the file being read: "cannot <verb> <what> <path>"; the
 * hint looks at the path itself. */
static fl_code read_error(fl_error *err, fl_code code, int errnum,
                          const char *verb, const char *what,
                          const char *path) {
  char v[128];
  snprintf(v, sizeof v, "%s%s%s", verb, what ? " " : "", what ? what : "");
  return fl_fs_error(err, code, errnum, v, path);
}

/* Check what fstat says before reading; sets *first to the buffer size to
 * start with. */
static fl_code check_kind(int fd, const char *path, const char *what,
                          const char *label, size_t max, unsigned flags,
                          size_t *first, fl_error *err) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return read_error(err, FL_OK, errno, "stat", what, path);
  if (S_ISDIR(st.st_mode))
    return fl_error_set(err, FL_EIO, "cannot read %s: it is a directory",
                        label);
  if ((flags & FL_FS_REGULAR) && !S_ISREG(st.st_mode))
    return fl_error_set(err, FL_EINVALID, "cannot read %s: not a regular file",
                        label);
  *first = READ_CHUNK;
  if (S_ISREG(st.st_mode)) {
    if ((uint64_t)st.st_size > max)
      return fl_error_set(err, FL_ETOO_LARGE,
                          "%s is %lld bytes, over the limit of %zu bytes",
                          label, (long long)st.st_size, max);
    /* the content, one byte to see that the end is there, the NUL */
    *first = (size_t)st.st_size + 2;
  }
  return FL_OK;
}

fl_code fl_fs_read_file(const char *path, const char *what, size_t max,
                        unsigned flags, char **data, size_t *len,
                        fl_error *err) {
  char label[LABEL_MAX];
  char *buf = NULL;
  size_t cap = 0, n = 0, first = READ_CHUNK;
  fl_code rc;
  int fd;
  *data = NULL;
  *len = 0;
  snprintf(label, sizeof label, "%s%s%s", what ? what : "", what ? " " : "",
           path);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return read_error(err, FL_OK, errno, "open", what, path);
  rc = check_kind(fd, path, what, label, max, flags, &first, err);
  if (rc != FL_OK)
    goto out;
  for (;;) {
    if (n + 1 >= cap) {
      size_t ncap = cap ? cap * 2 : first;
      /* room for one byte too many, and the NUL */
      size_t limit = max > SIZE_MAX - 2 ? SIZE_MAX : max + 2;
      if (ncap > limit || ncap < cap)
        ncap = limit;
      if (ncap <= n + 1 || grow(&buf, &cap, n, ncap, flags) != 0) {
        rc = fl_error_set(err, FL_ENOMEM, "out of memory reading %s", label);
        goto out;
      }
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = read_error(err, FL_EIO, errno, "read", what, path);
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
    if (n > max) {
      rc = fl_error_set(err, FL_ETOO_LARGE,
                        "%s is larger than the limit of %zu bytes", label, max);
      goto out;
    }
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  buf = NULL;
out:
  drop(buf, cap, flags);
  close(fd);
  return rc;
}

/* ---- writing -------------------------------------------------------------- */

fl_code fl_fs_write_all(int fd, const void *data, size_t len, const char *path,
                        fl_error *err) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fl_fs_error(err, FL_EIO, errno, "write", path);
    p += n;
    len -= (size_t)n;
  }
  return FL_OK;
}

/* The directory part of path ("." when there is none). */
static void dir_of(const char *path, char *dir, size_t n) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(dir, n, ".");
  else if (slash == path)
    snprintf(dir, n, "/");
  else
    snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

fl_code fl_fs_temp_open(fl_fs_temp *t, const char *path, mode_t mode,
                        fl_error *err) {
  char dir[PATH_MAX];
  struct stat st;
  t->fd = -1;
  t->tmp[0] = '\0';
  fl_code rc = copy_path(t->path, path, err);
  if (rc != FL_OK)
    return rc;
  const char *base = strrchr(t->path, '/');
  base = base ? base + 1 : t->path;
  if (*base == '\0')
    return fl_error_set(err, FL_EINVALID, "cannot write %s: not a file name",
                        path);
  dir_of(t->path, dir, sizeof dir);
  int n = snprintf(t->tmp, sizeof t->tmp, "%s/.%s.tmp-XXXXXX", dir, base);
  if (n < 0 || (size_t)n >= sizeof t->tmp) {
    t->tmp[0] = '\0';
    return fl_error_set(err, FL_EINVALID, "cannot write %s: path too long",
                        path);
  }
  t->fd = mkostemp(t->tmp, O_CLOEXEC);
  if (t->fd < 0) {
    int e = errno;
    t->tmp[0] = '\0';
    fl_fs_error(err, FL_EIO, e, "create a temporary file in", dir);
    if (err)
      fl_error_prefix(err, "writing %s: ", t->path);
    return FL_EIO;
  }
  if (stat(t->path, &st) == 0)
    mode = st.st_mode & 07777;
  if (fchmod(t->fd, mode) != 0) {
    rc = fl_fs_error(err, FL_EIO, errno, "set the mode of", t->tmp);
    fl_fs_temp_discard(t);
  }
  return rc;
}

void fl_fs_temp_discard(fl_fs_temp *t) {
  if (t->fd >= 0)
    close(t->fd);
  t->fd = -1;
  if (t->tmp[0])
    unlink(t->tmp);
  t->tmp[0] = '\0';
}

fl_code fl_fs_temp_commit(fl_fs_temp *t, fl_error *err) {
  char dir[PATH_MAX];
  fl_code rc = FL_OK;
  int fd = t->fd;
  t->fd = -1;
  if (fsync(fd) != 0) {
    rc = fl_fs_error(err, FL_EIO, errno, "fsync", t->tmp);
    close(fd);
  } else if (close(fd) != 0) {
    rc = fl_fs_error(err, FL_EIO, errno, "close", t->tmp);
  } else if (rename(t->tmp, t->path) != 0) {
    rc = fl_fs_error(err, FL_EIO, errno, "rename the temporary file over",
                     t->path);
  }
  if (rc != FL_OK) {
    fl_fs_temp_discard(t);
    return rc;
  }
  t->tmp[0] = '\0'; /* it is the file now */
  dir_of(t->path, dir, sizeof dir);
  return fl_fs_fsync_dir(dir, err);
}

fl_code fl_fs_write_atomic(const char *path, const void *data, size_t len,
                           fl_error *err) {
  fl_fs_temp t;
  fl_code rc = fl_fs_temp_open(&t, path, 0644, err);
  if (rc != FL_OK)
    return rc;
  if ((rc = fl_fs_write_all(t.fd, data, len, t.path, err)) != FL_OK) {
    fl_fs_temp_discard(&t);
    return rc;
  }
  return fl_fs_temp_commit(&t, err);
}
