/*
 * blobcopy.h - stream one blob from one endpoint to another, verified.
 *
 * The source download runs on a helper thread and writes into a bounded
 * pipe; the destination upload, on the calling thread, reads from it through
 * a verifying source that hashes every byte and checks size and digest
 * before it hands over the last chunk. A mismatch aborts the upload (the
 * endpoint cancels its upload session or removes its temp file), so a corrupt
 * blob is never committed. Memory use is the pipe's capacity, whatever the
 * blob's size.
 *
 * The verifying source can seek (fl_source.seek), for an upload that resumes
 * where the destination says it stopped: it keeps its hash state every
 * 8 MiB (the last few), and on a seek back stops the download thread,
 * restores the latest state at or before the new position, downloads again
 * from there (the source's blob_get at an offset) and hashes, without
 * handing over, the bytes before the new position. Progress counts every
 * byte once; the last chunk is still held back until the digest matches.
 * Seek runs on the uploading thread, like read.
 *
 * The download starts with the first read, so a destination that finds it
 * has the blob already (fl_endpoint_ops.upload_finds_present) costs no
 * request to the source.
 */
#ifndef FL_ENGINE_BLOBCOPY_H
#define FL_ENGINE_BLOBCOPY_H

#include <stdatomic.h>

#include "registry/endpoint.h"

typedef struct fl_blob_copy {
  fl_endpoint *src;
  const char *src_repo;
  fl_endpoint *dst;
  const char *dst_repo;
  const fl_descriptor *desc;
  size_t pipe_capacity;
  /* bytes verified and handed to the destination, added as they go */
  _Atomic uint64_t *progress;
  /* when not NULL: set to 1 if the destination found it had the blob and
   * read nothing (the source was never asked for it), else 0 */
  int *present;
} fl_blob_copy;

fl_code fl_blob_copy_run(const fl_blob_copy *c, fl_error *err);

#endif
