/*
 * registry.h - the OCI Distribution API as an endpoint.
 *
 * fl_registry_open gives an fl_endpoint (endpoint.h) that speaks to one
 * registry host through an fl_http client (http.h): ping, catalog and tag
 * listing with Link pagination, manifests verified against their digests,
 * streamed blob download and upload (POST then streamed PUT, or chunked
 * PATCH for registries that need it), cross-repository mounts, referrers.
 */
#ifndef FL_REGISTRY_REGISTRY_H
#define FL_REGISTRY_REGISTRY_H

#include "registry/endpoint.h"
#include "registry/http.h"

typedef struct fl_registry_config {
  fl_http_config http;
  uint64_t chunk_size; /* 0: one streamed PUT; else PATCH chunks this big */
  size_t page_size;    /* n= for catalog and tags; 0: 1000 */
} fl_registry_config;

fl_code fl_registry_open(const fl_registry_config *cfg, fl_endpoint **out,
                         fl_error *err);

/* The HTTP client behind a registry endpoint (NULL for other kinds). */
fl_http *fl_registry_http(fl_endpoint *ep);

#endif
