/*
 * archive.h - image archives as endpoints: oci-archive:FILE (a tar of an
 * OCI image layout, as skopeo writes and reads it) and docker-archive:FILE
 * (what `docker save` writes and `docker load` reads).
 *
 * An archive is opened for reading or for writing, never both.
 *
 * Reading (archive_read.c) works in place: the tar's member index is built
 * once (headers only), and manifests and blobs are read at their offsets,
 * so a 1 GiB layer streams from the file without being held in memory. An
 * oci-archive is an OCI layout (tags from org.opencontainers.image.ref.name;
 * referrers from the manifests index.json lists with a subject). A
 * docker-archive's manifest.json lists images (Config, RepoTags, Layers);
 * each is served as a Docker schema 2 manifest made from it (layers as
 * they are stored, digests computed by streaming each layer once), so its
 * config and layer digests are the archive's; the manifest is the one
 * skopeo makes (layers typed tar.gzip whatever their compression), so both
 * tools give it the same digest. The repository of a
 * docker-archive image is the name part of its RepoTags entry ("app" for
 * "app:v1"); reference "" means "the only image in the archive".
 *
 * Writing (archive_write.c) goes through a working OCI layout directory
 * beside the file (FILE.parts): every copy writes there as to an oci:
 * layout (blobs verified and renamed into place), so an interrupted run
 * leaves what it finished and the next one skips it. fl_archive_finish then
 * streams the layout into a temp file next to FILE (the tar of the layout;
 * for docker-archive, the config, the layers decompressed to tar with their
 * diff IDs checked, and manifest.json), fsyncs, renames it over FILE and
 * removes the working directory. A docker-archive holds single-platform
 * images: an index is refused unless a platform filter left one child.
 *
 * Threading: as every endpoint (endpoint.h); fl_archive_finish runs once,
 * after every copy into the archive is done.
 */
#ifndef FL_REGISTRY_ARCHIVE_H
#define FL_REGISTRY_ARCHIVE_H

#include "registry/endpoint.h"

typedef enum fl_archive_kind {
  FL_ARCHIVE_OCI,
  FL_ARCHIVE_DOCKER
} fl_archive_kind;

/* Open `path` for reading (the file must exist and be a readable archive
 * of that kind) or for writing (write=1: the working directory is created
 * or, after an interrupted run, reused). */
fl_code fl_archive_open(fl_archive_kind kind, const char *path, int write,
                        fl_endpoint **out, fl_error *err);

/* Write the archive file from what was copied into the endpoint (opened
 * for writing). FL_EINVALID for an endpoint that is not an archive being
 * written; FL_ENOT_FOUND when nothing was written into it. */
fl_code fl_archive_finish(fl_endpoint *ep, fl_error *err);

/* Read a whole member of an archive opened for reading (at most max
 * bytes; FL_ETOO_LARGE over that, FL_ENOT_FOUND when absent): extra files
 * an export puts beside the layout. */
fl_code fl_archive_read_member(fl_endpoint *ep, const char *name, size_t max,
                               char **out, size_t *len, fl_error *err);

/* Files in a working directory (FILE.parts) that an oci-archive carries as
 * extra members beside the layout. */
#define FL_ARCHIVE_CONTENTS "freightliner-contents.json"

/* Internal to archive_read.c / archive_write.c. */
fl_code fl_archive_open_reader(fl_archive_kind kind, const char *path,
                               fl_endpoint **out, fl_error *err);
fl_code fl_archive_open_writer(fl_archive_kind kind, const char *path,
                               fl_endpoint **out, fl_error *err);

#define FL_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define FL_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define FL_MT_DOCKER_LAYER_GZIP                                                \
  "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define FL_OCI_REF_NAME "org.opencontainers.image.ref.name"

#endif
