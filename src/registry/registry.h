/*
 * registry.h - the OCI Distribution API as an endpoint.
 *
 * fl_registry_open gives an fl_endpoint (endpoint.h) that speaks to one
 * registry host through an fl_http client (http.h): ping, catalog and tag
 * listing with Link pagination, manifests verified against their digests,
 * streamed blob download and upload (POST then streamed PUT, or chunked
 * PATCH for registries that need it), cross-repository mounts, referrers.
 *
 * Large blobs (FL_RESUME_THRESHOLD bytes or more, from a source that can
 * seek) go up in PATCH chunks of resume_chunk_size bytes: when a chunk fails
 * in transit, the upload asks the registry where its session stands (GET
 * Location: 204 with Range) and goes on from there instead of starting
 * over. Where the session is gone (404), the upload fails as before and the
 * caller tries the whole blob again.
 */
#ifndef FL_REGISTRY_REGISTRY_H
#define FL_REGISTRY_REGISTRY_H

#include "registry/endpoint.h"
#include "registry/http.h"

/* Blobs this big or bigger are uploaded resumably (see above). */
#define FL_RESUME_THRESHOLD (64ULL << 20)
/* The resume_chunk_size the Lua binding uses when none is given. */
#define FL_RESUME_CHUNK_DEFAULT (32ULL << 20)

typedef struct fl_registry_config {
  fl_http_config http;
  uint64_t chunk_size; /* 0: one streamed PUT; else PATCH chunks this big,
                          for every blob */
  uint64_t resume_chunk_size; /* PATCH chunk size for blobs of at least
                                 FL_RESUME_THRESHOLD bytes; 0: one streamed
                                 PUT for them too (no resuming) */
  size_t page_size;           /* n= for catalog and tags; 0: 1000 */
  /* Bounds on one listing (catalog or tags), whatever the registry sends:
   * pages followed and entries kept (0: the defaults below). A next-page
   * Link back to a page already read, or to another origin, fails at once. */
  size_t max_list_pages;
  size_t max_list_entries;
} fl_registry_config;

#define FL_LIST_PAGES_DEFAULT 10000
#define FL_LIST_ENTRIES_DEFAULT 100000

fl_code fl_registry_open(const fl_registry_config *cfg, fl_endpoint **out,
                         fl_error *err);

/* The HTTP client behind a registry endpoint (NULL for other kinds). */
fl_http *fl_registry_http(fl_endpoint *ep);

#endif
