/*
 * tar.h - just enough tar for image archives: an index of a tar file's
 * members (to read them in place, by offset) and a sequential writer.
 *
 * Reading: fl_tar_index_read scans the headers once, seeking over member
 * data, so opening a multi-gigabyte archive reads a few KiB; members are
 * then read with pread at their offset. It understands ustar (name + prefix),
 * pax extended headers (path, size) and GNU long names, and refuses what it
 * cannot read (bad checksum, truncated member) with the archive's name.
 *
 * Writing: members go to a file descriptor in order: a header with a known
 * size then the data (fl_tar_add_file streams a file in constant memory), or
 * a member whose size is learnt as it is written (fl_tar_open_member /
 * fl_tar_close_member, which rewrites the header: the output must be a
 * regular file). Sizes over 8 GiB use the base-256 size field. Names over
 * 100 bytes use the ustar prefix; over 255 bytes they are refused.
 *
 * Threading: an index is read-only once built; a writer belongs to one
 * thread at a time.
 */
#ifndef FL_REGISTRY_TAR_H
#define FL_REGISTRY_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "freightliner.h"

typedef struct fl_tar_member {
  char *name;      /* without a leading "./" */
  uint64_t offset; /* of the data */
  uint64_t size;
  char type; /* '0' regular file, '5' directory, ... */
} fl_tar_member;

typedef struct fl_tar_index {
  fl_tar_member *members;
  size_t count, cap;
  const fl_tar_member **by_name; /* regular files, for fl_tar_find */
  size_t nfiles;
} fl_tar_index;

fl_code fl_tar_index_read(int fd, const char *path, fl_tar_index *out,
                          fl_error *err);
/* The regular file `name` (last one wins, as tar extracts), or NULL.
 * O(log n): archives of many thousand blobs are looked up per blob. */
const fl_tar_member *fl_tar_find(const fl_tar_index *ix, const char *name);
void fl_tar_index_clear(fl_tar_index *ix);

typedef struct fl_tar_writer {
  int fd;
  const char *path; /* for messages */
  uint64_t pos;
} fl_tar_writer;

/* A directory entry. */
fl_code fl_tar_add_dir(fl_tar_writer *w, const char *name, fl_error *err);
/* A member from bytes in memory. */
fl_code fl_tar_add_bytes(fl_tar_writer *w, const char *name, const void *data,
                         size_t len, fl_error *err);
/* A member streamed from the file at src_path. */
fl_code fl_tar_add_file(fl_tar_writer *w, const char *name,
                        const char *src_path, fl_error *err);
/* A member of unknown size: open, write data, close (patches the header). */
fl_code fl_tar_open_member(fl_tar_writer *w, const char *name,
                           uint64_t *header_at, fl_error *err);
fl_code fl_tar_write(fl_tar_writer *w, const void *data, size_t len,
                     fl_error *err);
fl_code fl_tar_close_member(fl_tar_writer *w, const char *name,
                            uint64_t header_at, fl_error *err);
/* The two zero blocks that end an archive. */
fl_code fl_tar_finish(fl_tar_writer *w, fl_error *err);

#endif
