/*
 * cosign.h - cosign key-based signatures: public keys and one signature.
 *
 * This unit knows the cryptography and the payload format and nothing about
 * where signatures are stored (verify.c finds them). A key set is a list of
 * public keys loaded from PEM (ECDSA on any curve OpenSSL knows, Ed25519,
 * RSA; SubjectPublicKeyInfo or PKCS#1 "RSA PUBLIC KEY"). A signature is
 * cosign's: the payload is a simple-signing JSON document whose
 * critical.image.docker-manifest-digest names the image, and the signature
 * (base64 in the dev.cosignproject.cosign/signature annotation) is made over
 * the payload bytes: ECDSA (ASN.1 DER) and RSA PKCS#1 v1.5 over their
 * SHA-256, Ed25519 over the bytes themselves, as sigstore's verifiers do.
 *
 * Threading: a key set is immutable once built and may be used from any
 * number of threads at once; it is reference counted (fl_trust_keys_ref).
 */
#ifndef FL_TRUST_COSIGN_H
#define FL_TRUST_COSIGN_H

#include <stddef.h>

#include "freightliner.h"

/* At most this many keys in one set (the matched-key flags are a mask). */
#define FL_TRUST_KEYS_MAX 64
/* Signature payloads over this size are refused as malformed. */
#define FL_TRUST_PAYLOAD_MAX (256 * 1024)

#define FL_COSIGN_SIG_ANNOTATION "dev.cosignproject.cosign/signature"
#define FL_COSIGN_CERT_ANNOTATION "dev.sigstore.cosign/certificate"
#define FL_COSIGN_PAYLOAD_MT "application/vnd.dev.cosign.simplesigning.v1+json"
#define FL_COSIGN_SIG_ARTIFACT "application/vnd.dev.cosign.artifact.sig.v1+json"
#define FL_COSIGN_PAYLOAD_TYPE "cosign container image signature"

typedef struct fl_trust_keys fl_trust_keys;

fl_trust_keys *fl_trust_keys_new(void);
/* One more owner (a verification running on another thread); each owner
 * calls fl_trust_keys_free, and the last one frees. */
fl_trust_keys *fl_trust_keys_ref(fl_trust_keys *k);
void fl_trust_keys_free(fl_trust_keys *k);
/* Add a PEM public key; `name` (a file name, say) appears in messages. */
fl_code fl_trust_keys_add_pem(fl_trust_keys *k, const char *name,
                              const char *pem, size_t len, fl_error *err);
/* Read a PEM public key file (at most 64 KiB) and add it. */
fl_code fl_trust_keys_add_file(fl_trust_keys *k, const char *path,
                               fl_error *err);
size_t fl_trust_keys_count(const fl_trust_keys *k);
/* The name key i was added under, and its kind ("ecdsa-p256", "ed25519",
 * "rsa-2048", ...). */
const char *fl_trust_key_name(const fl_trust_keys *k, size_t i);
const char *fl_trust_key_kind(const fl_trust_keys *k, size_t i);

/* What one signature check found. */
typedef enum fl_sig_status {
  FL_SIG_VALID,           /* a key verified it and it covers the digest */
  FL_SIG_WRONG_KEY,       /* no key in the set verifies it */
  FL_SIG_DIGEST_MISMATCH, /* verified, but it signs another image */
  FL_SIG_MALFORMED,       /* bad base64, DER, JSON or payload shape */
} fl_sig_status;

/* Check one cosign signature over `payload` against every key in k. On
 * FL_SIG_VALID, *matched has bit i set for each key i that verifies it. For
 * every other status, why (words for a user) is written into why. */
fl_sig_status fl_cosign_check(const fl_trust_keys *k, const void *payload,
                              size_t len, const char *sig_b64,
                              const char *digest, unsigned long long *matched,
                              char *why, size_t why_len);

#endif
