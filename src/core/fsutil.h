/*
 * fsutil.h - the one file-system layer: atomic replacement of a file, mkdir
 * -p, reading a whole file under a size cap, and errors that say what failed
 * and why (a read-only file system, a full disk, a permission).
 *
 * Every part of Freightliner that writes or reads a file it owns goes
 * through here: the OCI layout endpoint (oci_layout.c), the Lua `fs` module
 * (l_fs.c: checkpoints, metrics, state files) and the credential files
 * (credentials.c). Nothing is ever half-written: a file is replaced by
 * writing a temporary file in the same directory, fsync, rename over the
 * target, fsync of the directory; on any failure the temporary file is
 * removed and the old file is left as it was.
 *
 * All functions are safe to call from any thread; none keeps state. Paths
 * are at most PATH_MAX bytes; longer ones are FL_EINVALID.
 */
#ifndef FL_CORE_FSUTIL_H
#define FL_CORE_FSUTIL_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "freightliner.h"

/* The fl_code of an errno: ENOENT and ENOTDIR NOT_FOUND, ENOMEM NOMEM, the
 * rest IO. */
fl_code fl_fs_code(int errnum);

/* 1 when path (or, if it does not exist, its nearest existing parent) is on
 * a file system mounted read-only; 0 otherwise or when that is unknown. */
int fl_fs_read_only(const char *path);

/* Fill err with "cannot <what> <path>: <strerror(errnum)>" plus, for EROFS,
 * ENOSPC, EDQUOT and EACCES, a sentence saying what that means for the
 * user. code FL_OK means fl_fs_code(errnum). Returns the code set. */
fl_code fl_fs_error(fl_error *err, fl_code code, int errnum, const char *what,
                    const char *path);

/* mkdir -p: path and every missing parent, new ones with mode (before the
 * umask). FL_OK when path is (or becomes) a directory; FL_EIO naming the
 * component when a file is in the way or creating it failed. */
fl_code fl_fs_mkdir_p(const char *path, mode_t mode, fl_error *err);

/* fsync a directory, so that a rename or unlink in it is durable. File
 * systems that cannot (EINVAL) count as done. */
fl_code fl_fs_fsync_dir(const char *dir, fl_error *err);

/* write(2) until all of data is written (EINTR retried). */
fl_code fl_fs_write_all(int fd, const void *data, size_t len, const char *path,
                        fl_error *err);

/* Flags of fl_fs_read_file. */
#define FL_FS_SECRET                                                           \
  0x1u /* wipe every intermediate buffer (OPENSSL_cleanse):
                              the caller wipes the result with fl_fs_wipe */
#define FL_FS_REGULAR                                                          \
  0x2u /* only a regular file (stat size, one read); else
                              also pipes and devices (/dev/fd/N, <(...)) */

/* Read the whole file at path into a NUL-terminated heap buffer (*data,
 * free() it; *len without the NUL). what names the file in messages
 * ("password file"; NULL: just the path). More than max bytes is
 * FL_ETOO_LARGE and nothing is returned; a missing file FL_ENOT_FOUND; a
 * directory FL_EINVALID. */
fl_code fl_fs_read_file(const char *path, const char *what, size_t max,
                        unsigned flags, char **data, size_t *len,
                        fl_error *err);

/* Wipe and free a buffer that held a secret (NULL is fine). */
void fl_fs_wipe(char *data, size_t len);

/* A file being replaced: a temporary file next to path. Open it, write to
 * fd (fl_fs_write_all, or anything else), then commit or discard it. */
typedef struct fl_fs_temp {
  int fd;              /* -1 when closed */
  char path[PATH_MAX]; /* the file it will replace */
  char tmp[PATH_MAX];  /* "<dir>/.<name>.tmp-XXXXXX" */
} fl_fs_temp;

/* Create the temporary file for path. It gets the mode of the file it
 * replaces, or mode when there is none yet. The directory must exist. */
fl_code fl_fs_temp_open(fl_fs_temp *t, const char *path, mode_t mode,
                        fl_error *err);

/* fsync, close, rename over path, fsync the directory. On failure the
 * temporary file is gone and path is untouched. */
fl_code fl_fs_temp_commit(fl_fs_temp *t, fl_error *err);

/* Close and remove the temporary file; path is untouched. Safe to call
 * after commit or twice. */
void fl_fs_temp_discard(fl_fs_temp *t);

/* Replace path with data, atomically (the steps above). A new file gets
 * mode 0644, an existing one keeps its mode. */
fl_code fl_fs_write_atomic(const char *path, const void *data, size_t len,
                           fl_error *err);

#endif /* FL_CORE_FSUTIL_H */
