/*
 * endpoint.h - the one interface every image store implements.
 *
 * An endpoint is somewhere images live: a registry spoken to over the OCI
 * Distribution API (registry.c) or an OCI image layout directory on disk
 * (oci_layout.c). The transfer engine and the Lua API only ever see this
 * interface, so a copy is the same code whichever two ends it joins.
 *
 * Threading: every operation is blocking and may be called from any thread,
 * concurrently with other operations on the same endpoint; implementations
 * lock their own shared state. Blob bytes move by streaming only: blob_get
 * pushes chunks into a sink as they arrive, blob_put pulls chunks from a
 * source as it sends them, and neither ever holds a whole blob in memory.
 * Manifests are small (at most FL_MANIFEST_MAX) and are passed as buffers.
 *
 * Lifetime: an endpoint is reference counted. Whoever opens one holds the
 * first reference; every other holder (the engine, for each job submitted
 * until its result is collected, and for the destinations its table of
 * known blob locations names) takes its own with fl_endpoint_ref, and each
 * drops its own with fl_endpoint_unref. The last unref frees it, so closing
 * an endpoint in Lua while the engine still copies through it is safe.
 */
#ifndef FL_REGISTRY_ENDPOINT_H
#define FL_REGISTRY_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "freightliner.h"

/* Manifests over this size are refused (FL_ETOO_LARGE), as registries do. */
#define FL_MANIFEST_MAX (4 * 1024 * 1024)
#define FL_MEDIA_TYPE_MAX 256

/* Media types every endpoint understands. */
#define FL_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define FL_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define FL_MT_DOCKER_MANIFEST                                                  \
  "application/vnd.docker.distribution.manifest.v2+json"
#define FL_MT_DOCKER_LIST                                                      \
  "application/vnd.docker.distribution.manifest.list.v2+json"
#define FL_MT_DOCKER_SCHEMA1                                                   \
  "application/vnd.docker.distribution.manifest.v1+json"
#define FL_MT_DOCKER_SCHEMA1_SIGNED                                            \
  "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* A manifest as fetched: exact bytes (digest computed over them), its media
 * type and digest. Free with fl_manifest_clear. */
typedef struct fl_manifest {
  char *data;
  size_t len;
  char media_type[FL_MEDIA_TYPE_MAX];
  char digest[FL_DIGEST_STR_MAX];
} fl_manifest;

void fl_manifest_clear(fl_manifest *m);

/* What a HEAD of a manifest or blob tells. */
typedef struct fl_descriptor {
  char media_type[FL_MEDIA_TYPE_MAX];
  char digest[FL_DIGEST_STR_MAX];
  uint64_t size;
} fl_descriptor;

/* A sink receives blob bytes in order. Return FL_OK to go on; anything else
 * stops the transfer and is returned by blob_get (with the sink's error). */
typedef struct fl_sink {
  fl_code (*write)(void *ud, const void *data, size_t len, fl_error *err);
  void *ud;
} fl_sink;

/* A source produces blob bytes in order. read returns the number of bytes
 * placed in buf (0 at the end) or -1 with err set, which aborts the upload;
 * rewind (may be NULL) starts again from byte 0 so a failed attempt can be
 * retried, returning FL_OK or FL_EUNSUPPORTED when it cannot. seek (may be
 * NULL; last so that positional initializers stay valid) makes the next read
 * start at byte `offset` (0 <= offset <= size), behind or ahead of where the
 * source is, so an interrupted upload can resume where the destination says
 * it stopped; a source that verifies its bytes must still verify all of
 * them before it hands over the last. */
typedef struct fl_source {
  long long (*read)(void *ud, void *buf, size_t len, fl_error *err);
  fl_code (*rewind)(void *ud, fl_error *err);
  void *ud;
  fl_code (*seek)(void *ud, uint64_t offset, fl_error *err);
} fl_source;

/* A string list, as catalog and tags return it. Free with fl_strlist_clear. */
typedef struct fl_strlist {
  char **items;
  size_t count;
  size_t cap;
} fl_strlist;

fl_code fl_strlist_push(fl_strlist *l, const char *s);
void fl_strlist_clear(fl_strlist *l);

typedef struct fl_endpoint fl_endpoint;

typedef struct fl_endpoint_ops {
  const char *kind; /* "registry" or "oci" */

  fl_code (*ping)(fl_endpoint *ep, fl_error *err);
  /* Repository names, sorted as the store returns them. max_items 0 = all. */
  fl_code (*catalog)(fl_endpoint *ep, size_t max_items, fl_strlist *out,
                     fl_error *err);
  fl_code (*tags)(fl_endpoint *ep, const char *repo, fl_strlist *out,
                  fl_error *err);

  /* reference: a tag or a digest. The content is verified against the
   * digest asked for (or the one the store declares), refused over
   * FL_MANIFEST_MAX, and schema 1 is refused with FL_EUNSUPPORTED. */
  fl_code (*manifest_get)(fl_endpoint *ep, const char *repo,
                          const char *reference, fl_manifest *out,
                          fl_error *err);
  /* FL_ENOT_FOUND when absent. */
  fl_code (*manifest_head)(fl_endpoint *ep, const char *repo,
                           const char *reference, fl_descriptor *out,
                           fl_error *err);
  /* reference: the tag to set, or the manifest's digest for an untagged
   * push. The caller guarantees every blob it references is present. */
  fl_code (*manifest_put)(fl_endpoint *ep, const char *repo,
                          const char *reference, const void *data, size_t len,
                          const char *media_type, fl_error *err);
  fl_code (*manifest_delete)(fl_endpoint *ep, const char *repo,
                             const char *reference, fl_error *err);

  /* FL_OK and *size when present, FL_ENOT_FOUND when absent. */
  fl_code (*blob_exists)(fl_endpoint *ep, const char *repo, const char *digest,
                         uint64_t *size, fl_error *err);
  /* Stream the blob from byte `offset` into sink. Does not verify the
   * digest: the caller hashes what it receives. */
  fl_code (*blob_get)(fl_endpoint *ep, const char *repo, const char *digest,
                      uint64_t offset, fl_sink *sink, fl_error *err);
  /* Upload exactly `size` bytes from src as blob `digest`. The blob is
   * committed only if the bytes match; on any failure nothing is committed
   * (upload session cancelled, temp file removed). An implementation may
   * use src->seek, when set, to resume an interrupted upload. When the store
   * finds it has the blob already, it may return FL_OK without reading src
   * at all (see upload_finds_present). */
  fl_code (*blob_put)(fl_endpoint *ep, const char *repo, const char *digest,
                      uint64_t size, fl_source *src, fl_error *err);
  /* Make a blob present in another repository of the same store without
   * sending its bytes. FL_OK if mounted; FL_EUNSUPPORTED if the store
   * declined (the caller uploads instead). */
  fl_code (*blob_mount)(fl_endpoint *ep, const char *repo,
                        const char *from_repo, const char *digest,
                        fl_error *err);
  fl_code (*blob_delete)(fl_endpoint *ep, const char *repo, const char *digest,
                         fl_error *err);

  /* OCI 1.1 referrers of a manifest digest as an image index (JSON bytes in
   * out), filtered by artifact_type when not NULL. FL_EUNSUPPORTED when the
   * store has no referrers API (the caller falls back to tag schema). */
  fl_code (*referrers)(fl_endpoint *ep, const char *repo, const char *digest,
                       const char *artifact_type, fl_manifest *out,
                       fl_error *err);

  /* A human description for logs ("registry 127.0.0.1:5000"). */
  const char *(*describe)(fl_endpoint *ep);
  void (*free)(fl_endpoint *ep);

  /* 1 when blob_put learns by itself, in the request that opens the upload,
   * whether the blob is already in the repository (and then reads nothing
   * from src): a caller need not ask blob_exists first. */
  int upload_finds_present;
} fl_endpoint_ops;

/* Implementations embed this as their first member (zeroed: one
 * reference, the opener's). */
struct fl_endpoint {
  const fl_endpoint_ops *ops;
  _Atomic int extra_refs; /* references beyond the first; endpoint.c only */
};

/* Take a reference (returns ep); drop one, freeing on the last (NULL ok). */
fl_endpoint *fl_endpoint_ref(fl_endpoint *ep);
void fl_endpoint_unref(fl_endpoint *ep);

/* The opener's release: the same as fl_endpoint_unref. */
static inline void fl_endpoint_free(fl_endpoint *ep) { fl_endpoint_unref(ep); }

/* Read blob `digest` of repo into memory (*out, malloc'ed, NUL-terminated
 * after *len bytes) and check that it hashes to its digest: for the small
 * blobs a policy reads (configs, signature payloads, ep:blob). More than
 * max bytes fails TOO_LARGE, other content DIGEST_MISMATCH, each naming
 * the blob; *out is NULL on failure. */
fl_code fl_endpoint_blob_read(fl_endpoint *ep, const char *repo,
                              const char *digest, size_t max, char **out,
                              size_t *len, fl_error *err);

#endif
