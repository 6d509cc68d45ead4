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
