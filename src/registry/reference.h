/*
 * reference.h - Docker/distribution image references.
 *
 * Parses the strings a user types to name an image ("alpine",
 * "user/app:1.2", "localhost:5000/x/y:tag@sha256:...", "[::1]:5000/x") with
 * exactly the grammar of github.com/distribution/reference, and normalises
 * them the way the docker CLI does: a name without a registry domain lives on
 * Docker Hub ("docker.io", contacted as "registry-1.docker.io"), a one-part
 * Docker Hub name gets the "library/" namespace, and a reference without tag
 * or digest gets the tag "latest". It also formats references back (full and
 * "familiar" forms) and tells whether a host is a loopback address. The
 * parser is a hand-written scanner over the input with no heap allocation;
 * every error is FL_EINVALID with a message that quotes the input and names
 * what is wrong and at which byte offset.
 *
 * This is the one grammar of repository names, tags and digests in
 * Freightliner: whatever checks one of them alone (a registry or OCI layout
 * operation, the config loader through core.ref.check_*, fl_digest_parse)
 * calls fl_ref_check_* below rather than restating a rule.
 */
#ifndef FL_REGISTRY_REFERENCE_H
#define FL_REGISTRY_REFERENCE_H

#include <stddef.h>

#include "freightliner.h"

#define FL_REF_DOMAIN_MAX 256
#define FL_REF_PATH_MAX 256
#define FL_REF_TAG_MAX 129

/* A parsed, normalised reference. Every field is a NUL-terminated string. */
typedef struct fl_ref {
  /* "docker.io", "localhost:5000", "[::1]:5000" */
  char domain[FL_REF_DOMAIN_MAX];
  /* host[:port] to contact: "registry-1.docker.io" for docker.io */
  char api_host[FL_REF_DOMAIN_MAX];
  char path[FL_REF_PATH_MAX];     /* "library/alpine" */
  char tag[FL_REF_TAG_MAX];       /* "" when none */
  char digest[FL_DIGEST_STR_MAX]; /* "" when none */
  /* 1 when tag is "latest" only because none was given */
  int tag_defaulted;
} fl_ref;

/* Parse and normalise a reference: [docker://][domain/]path[:tag][@digest].
 * "alpine" gives docker.io, library/alpine, tag "latest" (tag_defaulted 1);
 * "index.docker.io" is read as "docker.io". The first path element is the
 * domain when it contains '.' or ':', is "localhost", or has an upper-case
 * letter; otherwise the domain is docker.io. A tag and a digest may both be
 * given; digests must be sha256 (64 hex) or sha512 (128 hex), lower-case.
 * On error *out is zeroed and FL_EINVALID is returned with err filled. */
fl_code fl_ref_parse(const char *s, fl_ref *out, fl_error *err);

/* Parse and normalise a repository name ("host/repo", "alpine"); a tag or a
 * digest is an error. tag and digest are left empty, tag_defaulted 0. */
fl_code fl_ref_parse_repository(const char *s, fl_ref *out, fl_error *err);

/* A repository name as it appears in a registry URL (/v2/<name>/...): the
 * path alone, no domain, tag or digest: lower-case components of letters
 * and digits joined by '.', '_', '__' or runs of '-', separated by '/', at
 * most 255 characters. FL_EINVALID with "invalid repository name "<s>":
 * <what> (at offset N)" otherwise. */
fl_code fl_ref_check_repository(const char *s, fl_error *err);

/* A tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. FL_EINVALID with "invalid tag
 * "<s>": <what> (at offset N)" otherwise. */
fl_code fl_ref_check_tag(const char *s, fl_error *err);

/* A digest: algorithm ":" hex, the algorithm one digest.c supports (sha256,
 * sha512) and the hex lower-case and exactly as long as it demands. *alg
 * (may be NULL) gets the algorithm. FL_EUNSUPPORTED for a well-formed digest
 * of another algorithm, FL_EINVALID otherwise; the message starts "invalid
 * digest "<s>": ". fl_digest_parse is this check. */
fl_code fl_ref_check_digest(const char *s, fl_digest_alg *alg, fl_error *err);

/* A tag or a digest, as the reference of a manifest operation: a digest when
 * it holds a ':' (no tag can), a tag otherwise. *is_digest (may be NULL) says
 * which. An empty or NULL string is FL_EINVALID. */
fl_code fl_ref_check_reference(const char *s, int *is_digest, fl_error *err);

/* Full form "domain/path:tag@digest", leaving out an empty tag or digest.
 * Returns the length of the whole string (snprintf semantics: buf may be
 * NULL when n is 0; the output is truncated and NUL-terminated if n is too
 * small). */
size_t fl_ref_format(const fl_ref *r, char *buf, size_t n);

/* Familiar form, as the docker CLI prints it: "alpine", "user/app:tag",
 * "quay.io/x/y@sha256:...". Docker Hub's domain and a lone "library/" are
 * dropped, and so is a tag that was only defaulted. snprintf semantics. */
size_t fl_ref_familiar(const fl_ref *r, char *buf, size_t n);

/* "domain/path". snprintf semantics. */
size_t fl_ref_name(const fl_ref *r, char *buf, size_t n);

/* 1 if host is loopback: localhost, localhost:port, 127.0.0.0/8 (with
 * optional :port), [::1] (with optional :port; any spelling of ::1 between
 * the brackets). "localhost" is matched without regard to case. 0 otherwise,
 * and for NULL. */
int fl_host_is_loopback(const char *host);

#endif /* FL_REGISTRY_REFERENCE_H */
