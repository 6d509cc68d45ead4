/*
 * manifest.h - reading image manifests and indexes.
 *
 * Manifests are JSON, and the digest of a manifest is the digest of its
 * exact bytes, so nothing here ever re-serialises one: these functions only
 * classify a manifest (its media type, schema 1 or not), check it against
 * an expected digest and size limit, and list the descriptors it points at
 * (config, layers, child manifests, subject) for the transfer engine. JSON is
 * read with jansson.
 */
#ifndef FL_REGISTRY_MANIFEST_H
#define FL_REGISTRY_MANIFEST_H

#include "registry/endpoint.h"

typedef enum fl_desc_role {
  FL_ROLE_CONFIG,
  FL_ROLE_LAYER,
  FL_ROLE_MANIFEST, /* a child of an index */
  FL_ROLE_SUBJECT
} fl_desc_role;

typedef struct fl_platform {
  char os[32];
  char architecture[32];
  char variant[32];
} fl_platform;

typedef struct fl_ref_desc {
  fl_desc_role role;
  fl_descriptor desc;
  fl_platform platform; /* children of an index only */
  int has_platform;
} fl_ref_desc;

typedef struct fl_manifest_info {
  char media_type[FL_MEDIA_TYPE_MAX];
  char artifact_type[FL_MEDIA_TYPE_MAX];
  int is_index; /* OCI index or Docker manifest list */
  fl_ref_desc *refs;
  size_t nrefs;
} fl_manifest_info;

/* Check raw manifest bytes: size limit, valid JSON object, not schema 1,
 * media type known (from the JSON mediaType, else `declared`, else by shape),
 * and, when expected_digest is a digest, that the bytes hash to it. Fills
 * m->digest (computed with the algorithm of expected_digest, else sha256) and
 * m->media_type. */
fl_code fl_manifest_check(fl_manifest *m, const char *declared,
                          const char *expected_digest, fl_error *err);

/* Parse the descriptors a checked manifest references. */
fl_code fl_manifest_parse(const fl_manifest *m, fl_manifest_info *out,
                          fl_error *err);
void fl_manifest_info_clear(fl_manifest_info *info);

/* 1 if media type is a manifest list / index. */
int fl_media_type_is_index(const char *mt);
/* 1 if media type is an image manifest (OCI or Docker schema 2). */
int fl_media_type_is_manifest(const char *mt);

/* Parse "os/arch[/variant]" into p. */
fl_code fl_platform_parse(const char *s, fl_platform *p, fl_error *err);
/* 1 if `have` satisfies `want` (variant matches if want has none; arm64's
 * default variant v8 and a missing one are the same). */
int fl_platform_match(const fl_platform *want, const fl_platform *have);

#endif
