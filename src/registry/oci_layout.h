/*
 * oci_layout.h - the oci:PATH transport: an OCI image layout directory as an
 * endpoint.
 *
 * An OCI image layout (opencontainers/image-spec image-layout.md) is a
 * directory holding `oci-layout` ({"imageLayoutVersion":"1.0.0"}),
 * `index.json` (an OCI image index whose descriptors name tags through the
 * org.opencontainers.image.ref.name annotation) and content-addressed files
 * `blobs/<alg>/<hex>`. This unit reads and writes such a directory through
 * the fl_endpoint interface (kind "oci"), so the transfer engine copies to
 * and from disk exactly as it does to and from a registry. The directory is
 * one repository: every `repo` argument is ignored. Every write is atomic (a
 * temp file in the same directory, fsync, rename, fsync of the directory):
 * blobs are verified against their digest before they are renamed into
 * place, and index.json read-modify-writes are serialised by a mutex inside
 * the endpoint and by flock(2) on the layout directory against other
 * processes, so concurrent manifest_put calls never lose a tag.
 */
#ifndef FL_REGISTRY_OCI_LAYOUT_H
#define FL_REGISTRY_OCI_LAYOUT_H

#include "registry/endpoint.h"

/* Open the layout at path. create=0: the directory must exist
 * (FL_ENOT_FOUND) and hold an oci-layout file (FL_EINVALID). create=1: make
 * the directory and its parents, blobs/, oci-layout and an empty index.json
 * as needed (existing files are kept). *out gets the endpoint; free it with
 * fl_endpoint_free. */
fl_code fl_oci_layout_open(const char *path, int create, fl_endpoint **out,
                           fl_error *err);

#endif
