/*
 * verify.h - is an image signed by our keys? cosign signatures found where
 * cosign puts them, checked with cosign.c.
 *
 * Signatures of image digest D in repository R are looked for in both
 * places cosign stores them: the OCI 1.1 referrers of D (artifact type
 * application/vnd.dev.cosign.artifact.sig.v1+json) and the tag
 * R:sha256-<hex>.sig. Each is a manifest whose layers are simple-signing
 * payloads carrying the signature in an annotation; a payload blob is read
 * (bounded, and checked against its descriptor's digest) and verified.
 * The digest checked is the one given: for a multi-arch image that is the
 * index digest, as cosign signs it.
 *
 * Policy: FL_TRUST_ANY accepts a valid signature by any one key;
 * FL_TRUST_ALL needs one by every key. A refusal is FL_EUNVERIFIED with the
 * reason (no signature, wrong key, digest mismatch, malformed signature,
 * keyless signature not supported). Registry failures keep their own code.
 *
 * Threading: blocking; any thread; the key set is only read.
 */
#ifndef FL_TRUST_VERIFY_H
#define FL_TRUST_VERIFY_H

#include "registry/endpoint.h"
#include "trust/cosign.h"

typedef enum fl_trust_require { FL_TRUST_ANY, FL_TRUST_ALL } fl_trust_require;

typedef struct fl_trust_result {
  size_t signatures;       /* cosign signatures examined */
  unsigned long long keys; /* bit i: key i made a valid signature */
  size_t keyless;          /* certificate-based signatures seen */
  char where[16];          /* "referrers", "tag" or "" */
} fl_trust_result;

fl_code fl_trust_verify(fl_endpoint *ep, const char *repo, const char *digest,
                        const fl_trust_keys *keys, fl_trust_require require,
                        fl_trust_result *res, fl_error *err);

#endif
