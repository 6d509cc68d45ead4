/*
 * tar.c - tar member index and sequential writer (see tar.h).
 */
#define _GNU_SOURCE /* pread/pwrite are POSIX; strndup */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/tar.h"

#define BLOCK 512
#define COPY_CHUNK (256 * 1024)
#define PAX_MAX (1024 * 1024)

/* ---- reading -------------------------------------------------------------- */

static int all_zero(const unsigned char *b) {
  for (int i = 0; i < BLOCK; i++)
    if (b[i])
      return 0;
  return 1;
}

static uint64_t parse_num(const unsigned char *f, size_t len, int *ok) {
  uint64_t v = 0;
  *ok = 1;
  if (f[0] & 0x80) { /* base-256 */
    for (size_t i = 1; i < len; i++) {
      if (v >> 56) {
        *ok = 0;
        return 0;
      }
      v = (v << 8) | f[i];
    }
    return v;
  }
  size_t i = 0;
  while (i < len && (f[i] == ' ' || f[i] == '\0'))
    i++;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; i++)
    v = v * 8 + (uint64_t)(f[i] - '0');
  if (i < len && f[i] != ' ' && f[i] != '\0')
    *ok = 0;
  return v;
}

static int checksum_ok(const unsigned char *h) {
  int ok;
  uint64_t want = parse_num(h + 148, 8, &ok);
  uint64_t sum = 0;
  for (int i = 0; i < BLOCK; i++)
    sum += (i >= 148 && i < 156) ? ' ' : h[i];
  return ok && sum == want;
}

static fl_code read_at(int fd, void *buf, size_t len, uint64_t off,
                       const char *path, fl_error *err) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fl_error_set(err, FL_EIO, "reading %s: %s", path, strerror(errno));
    if (n == 0)
      return fl_error_set(err, FL_EINVALID,
                          "%s: truncated tar archive (ends inside a member)",
                          path);
    done += (size_t)n;
  }
  return FL_OK;
}

/* Takes ownership of name. */
static fl_code
push_member(fl_tar_index *ix,
            char *name, // NOLINT(readability-non-const-parameter)
            uint64_t off, uint64_t size, char type) {
  if (ix->count == ix->cap) {
    size_t cap = ix->cap ? ix->cap * 2 : 64;
    fl_tar_member *m = realloc(ix->members, cap * sizeof *m);
    if (!m)
      return FL_ENOMEM;
    ix->members = m;
    ix->cap = cap;
  }
  ix->members[ix->count++] =
      (fl_tar_member){.name = name, .offset = off, .size = size, .type = type};
  return FL_OK;
}

/* "./blobs/x" -> "blobs/x"; "dir/" -> "dir" */
static char *clean_name(const char *s, size_t len) {
  while (len >= 2 && s[0] == '.' && s[1] == '/') {
    s += 2;
    len -= 2;
  }
  while (len > 0 && s[len - 1] == '/')
    len--;
  return strndup(s, len);
}

/* Apply the records of a pax header ("LEN key=value\n"...). */
static void pax_apply(const char *p, size_t len, char **path, uint64_t *size,
                      int *has_size) {
  size_t i = 0;
  while (i < len) {
    /* "LEN key=value\n", LEN counting the whole record: read within the
     * buffer only (it is not NUL-terminated), and refuse a LEN too small to
     * hold its own digits and space, or larger than what is left */
    size_t j = i, rl = 0;
    while (j < len && p[j] >= '0' && p[j] <= '9' && rl <= len)
      rl = rl * 10 + (size_t)(p[j++] - '0');
    if (rl == 0 || j >= len || p[j] != ' ' || rl > len - i || i + rl < j + 2)
      return;
    const char *kv = p + j + 1, *rec_end = p + i + rl - 1; /* at '\n' */
    const char *eq = memchr(kv, '=', (size_t)(rec_end - kv));
    if (eq) {
      size_t klen = (size_t)(eq - kv);
      if (klen == 4 && memcmp(kv, "path", 4) == 0) {
        free(*path);
        *path = clean_name(eq + 1, (size_t)(rec_end - eq - 1));
      } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
        *size = strtoull(eq + 1, NULL, 10);
        *has_size = 1;
      }
    }
    i += rl;
  }
}

/* By name, then by position in the archive. */
static int cmp_member(const void *a, const void *b) {
  const fl_tar_member *x = *(const fl_tar_member *const *)a;
  const fl_tar_member *y = *(const fl_tar_member *const *)b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x < y ? -1 : x > y);
}

static fl_code sort_names(fl_tar_index *ix) {
  ix->by_name = malloc((ix->count + 1) * sizeof(const fl_tar_member *));
  if (!ix->by_name)
    return FL_ENOMEM;
  ix->nfiles = 0;
  for (size_t i = 0; i < ix->count; i++)
    if (ix->members[i].type == '0')
      ix->by_name[ix->nfiles++] = &ix->members[i];
  if (ix->nfiles > 1)
    qsort(ix->by_name, ix->nfiles, sizeof(const fl_tar_member *), cmp_member);
  return FL_OK;
}

fl_code fl_tar_index_read(int fd, const char *path, fl_tar_index *out,
                          fl_error *err) {
  memset(out, 0, sizeof *out);
  unsigned char h[BLOCK];
  uint64_t off = 0;
  char *next_path = NULL; /* from a pax or GNU long-name header */
  uint64_t next_size = 0;
  int next_has_size = 0;
  fl_code rc = FL_OK;
  struct stat st;
  if (fstat(fd, &st) != 0)
    return fl_error_set(err, FL_EIO, "%s: %s", path, strerror(errno));
  uint64_t file_size = (uint64_t)st.st_size;
  for (;;) {
    if (off + BLOCK > file_size) {
      if (off == file_size && out->count > 0)
        break; /* no end blocks, but whole members: accept */
      rc = fl_error_set(err, FL_EINVALID, "%s: truncated tar archive", path);
      break;
    }
    if ((rc = read_at(fd, h, BLOCK, off, path, err)) != FL_OK)
      break;
    if (all_zero(h))
      break;
    if (!checksum_ok(h)) {
      rc = fl_error_set(err, FL_EINVALID,
                        "%s: not a tar archive (bad header checksum at byte "
                        "%llu)",
                        path, (unsigned long long)off);
      break;
    }
    int ok;
    uint64_t size = parse_num(h + 124, 12, &ok);
    if (!ok) {
      rc = fl_error_set(err, FL_EINVALID, "%s: bad member size at byte %llu",
                        path, (unsigned long long)off);
      break;
    }
    if (next_has_size)
      size = next_size;
    char type = (char)h[156];
    uint64_t data = off + BLOCK;
    if (data + size > file_size) {
      rc = fl_error_set(err, FL_EINVALID,
                        "%s: truncated tar archive (a member ends past the "
                        "end of the file)",
                        path);
      break;
    }
    if (type == 'x' || type == 'L') {
      if (size > PAX_MAX) {
        rc = fl_error_set(err, FL_EINVALID, "%s: oversized tar header", path);
        break;
      }
      char *buf = malloc((size_t)size + 1);
      if (!buf) {
        rc = fl_error_set(err, FL_ENOMEM, "out of memory");
        break;
      }
      if ((rc = read_at(fd, buf, (size_t)size, data, path, err)) != FL_OK) {
        free(buf);
        break;
      }
      buf[size] = '\0';
      if (type == 'x') {
        pax_apply(buf, (size_t)size, &next_path, &next_size, &next_has_size);
      } else {
        free(next_path);
        next_path = clean_name(buf, strnlen(buf, (size_t)size));
      }
      free(buf);
    } else if (type == 'g' || type == 'K') {
      /* global pax header, GNU long link name: nothing we need */
    } else {
      char *name = next_path;
      next_path = NULL;
      if (!name) {
        char full[256 + 1];
        size_t nlen = strnlen((const char *)h, 100);
        if (memcmp(h + 257, "ustar", 5) == 0 && h[345]) {
          size_t plen = strnlen((const char *)h + 345, 155);
          snprintf(full, sizeof full, "%.*s/%.*s", (int)plen, h + 345,
                   (int)nlen, h);
        } else {
          snprintf(full, sizeof full, "%.*s", (int)nlen, h);
        }
        name = clean_name(full, strlen(full));
      }
      if (!type)
        type = '0'; /* old tar: a regular file */
      if (!name || push_member(out, name, data, size, type) != FL_OK) {
        free(name);
        rc = fl_error_set(err, FL_ENOMEM, "out of memory");
        break;
      }
      next_has_size = 0;
    }
    off = data + (size + BLOCK - 1) / BLOCK * BLOCK;
  }
  free(next_path);
  if (rc == FL_OK && sort_names(out) != FL_OK)
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
  if (rc != FL_OK)
    fl_tar_index_clear(out);
  return rc;
}

const fl_tar_member *fl_tar_find(const fl_tar_index *ix, const char *name) {
  /* the first entry whose name is greater; the one before is the last
   * member with that name, if any */
  size_t lo = 0, hi = ix->nfiles;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(ix->by_name[mid]->name, name) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo > 0 && strcmp(ix->by_name[lo - 1]->name, name) == 0)
    return ix->by_name[lo - 1];
  return NULL;
}

void fl_tar_index_clear(fl_tar_index *ix) {
  for (size_t i = 0; i < ix->count; i++)
    free(ix->members[i].name);
  free(ix->members);
  free(ix->by_name);
  memset(ix, 0, sizeof *ix);
}

/* ---- writing -------------------------------------------------------------- */

static fl_code write_all(fl_tar_writer *w, const void *data, size_t len,
                         fl_error *err) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(w->fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fl_error_set(err, FL_EIO, "writing %s: %s", w->path,
                          strerror(errno));
    p += n;
    len -= (size_t)n;
    w->pos += (uint64_t)n;
  }
  return FL_OK;
}

static void put_octal(unsigned char *f, size_t len, uint64_t v) {
  snprintf((char *)f, len, "%0*llo", (int)len - 1, (unsigned long long)v);
}

static fl_code make_header(unsigned char *h, const char *name, uint64_t size,
                           char type, const char *path, fl_error *err) {
  memset(h, 0, BLOCK);
  size_t len = strlen(name);
  if (len <= 100) {
    memcpy(h, name, len);
  } else {
    /* split at a '/' so that the prefix has <= 155 and the name <= 100 */
    const char *cut = NULL;
    for (const char *s = name; (s = strchr(s, '/')) != NULL; s++)
      if ((size_t)(s - name) <= 155 && len - (size_t)(s - name) - 1 <= 100)
        cut = s;
    if (!cut)
      return fl_error_set(err, FL_EINVALID, "%s: member name too long: %.80s",
                          path, name);
    memcpy(h + 345, name, (size_t)(cut - name));
    memcpy(h, cut + 1, len - (size_t)(cut - name) - 1);
  }
  put_octal(h + 100, 8, type == '5' ? 0755 : 0644);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  if (size < 077777777777ULL) {
    put_octal(h + 124, 12, size);
  } else {
    h[124] = 0x80;
    for (int i = 11; i >= 4; i--, size >>= 8)
      h[124 + i] = (unsigned char)(size & 0xff);
  }
  put_octal(h + 136, 12, 0);
  h[156] = (unsigned char)type;
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < BLOCK; i++)
    sum += h[i];
  snprintf((char *)h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return FL_OK;
}

static fl_code pad(fl_tar_writer *w, fl_error *err) {
  static const unsigned char zero[BLOCK];
  size_t rem = (size_t)(w->pos % BLOCK);
  return rem ? write_all(w, zero, BLOCK - rem, err) : FL_OK;
}

static fl_code header(fl_tar_writer *w, const char *name, uint64_t size,
                      char type, fl_error *err) {
  unsigned char h[BLOCK];
  fl_code rc = make_header(h, name, size, type, w->path, err);
  return rc == FL_OK ? write_all(w, h, BLOCK, err) : rc;
}

fl_code fl_tar_add_dir(fl_tar_writer *w, const char *name, fl_error *err) {
  char dir[300];
  snprintf(dir, sizeof dir, "%s/", name);
  return header(w, dir, 0, '5', err);
}

fl_code fl_tar_add_bytes(fl_tar_writer *w, const char *name, const void *data,
                         size_t len, fl_error *err) {
  fl_code rc = header(w, name, len, '0', err);
  if (rc == FL_OK)
    rc = write_all(w, data, len, err);
  return rc == FL_OK ? pad(w, err) : rc;
}

fl_code fl_tar_add_file(fl_tar_writer *w, const char *name,
                        const char *src_path, fl_error *err) {
  int fd = open(src_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fl_error_set(err, errno == ENOENT ? FL_ENOT_FOUND : FL_EIO,
                        "cannot open %s: %s", src_path, strerror(errno));
  struct stat st;
  memset(&st, 0, sizeof st);
  char *buf = malloc(COPY_CHUNK);
  fl_code rc = FL_OK;
  if (!buf)
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
  else if (fstat(fd, &st) != 0)
    rc = fl_error_set(err, FL_EIO, "%s: %s", src_path, strerror(errno));
  if (rc == FL_OK)
    rc = header(w, name, (uint64_t)st.st_size, '0', err);
  uint64_t left = rc == FL_OK ? (uint64_t)st.st_size : 0;
  while (rc == FL_OK && left > 0) {
    ssize_t n = read(fd, buf, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = fl_error_set(err, FL_EIO, "reading %s: %s", src_path,
                        n < 0 ? strerror(errno) : "file shrank");
      break;
    }
    rc = write_all(w, buf, (size_t)n, err);
    left -= (uint64_t)n;
  }
  if (rc == FL_OK)
    rc = pad(w, err);
  free(buf);
  close(fd);
  return rc;
}

fl_code fl_tar_open_member(fl_tar_writer *w, const char *name,
                           uint64_t *header_at, fl_error *err) {
  *header_at = w->pos;
  return header(w, name, 0, '0', err);
}

fl_code fl_tar_write(fl_tar_writer *w, const void *data, size_t len,
                     fl_error *err) {
  return write_all(w, data, len, err);
}

fl_code fl_tar_close_member(fl_tar_writer *w, const char *name,
                            uint64_t header_at, fl_error *err) {
  uint64_t size = w->pos - header_at - BLOCK;
  unsigned char h[BLOCK];
  fl_code rc = make_header(h, name, size, '0', w->path, err);
  if (rc != FL_OK)
    return rc;
  if (pwrite(w->fd, h, BLOCK, (off_t)header_at) != BLOCK)
    return fl_error_set(err, FL_EIO, "writing %s: %s", w->path,
                        strerror(errno));
  return pad(w, err);
}

fl_code fl_tar_finish(fl_tar_writer *w, fl_error *err) {
  static const unsigned char zero[2 * BLOCK];
  return write_all(w, zero, sizeof zero, err);
}
