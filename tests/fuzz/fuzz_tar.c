/* fuzz_tar.c - libFuzzer target: the tar member index (src/registry/tar.c)
 * over arbitrary bytes, as an archive file from anywhere would give it;
 * every member it reports must lie inside the file. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "registry/tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz.tar", MFD_CLOEXEC);
  if (fd < 0)
    return 0;
  if (write(fd, data, size) == (ssize_t)size) {
    fl_tar_index ix;
    if (fl_tar_index_read(fd, "fuzz.tar", &ix, NULL) == FL_OK) {
      for (size_t i = 0; i < ix.count; i++)
        if (ix.members[i].offset + ix.members[i].size > size)
          abort(); /* a member outside the file */
      fl_tar_find(&ix, "index.json");
      fl_tar_index_clear(&ix);
    }
  }
  close(fd);
  return 0;
}
