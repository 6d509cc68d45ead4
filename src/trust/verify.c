/*
 * verify.c - find an image's cosign signatures (referrers, the referrers
 * tag schema, the .sig tag) and decide whether the keys accept it (see
 * verify.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "registry/manifest.h"
#include "trust/verify.h"

#define WHY_MAX 240
#define SEEN_MAX 64 /* signature manifests examined per image */

typedef struct scan {
  fl_endpoint *ep;
  const char *repo;
  const char *digest;
  const fl_trust_keys *keys;
  fl_trust_result *res;
  size_t wrong, mismatch, malformed, bundles;
  char why_wrong[WHY_MAX], why_mismatch[WHY_MAX], why_malformed[WHY_MAX];
  char seen[SEEN_MAX][FL_DIGEST_STR_MAX];
  size_t nseen;
} scan;

/* Keep the first reason of each kind. */
static void note(char *slot, const char *why) {
  if (!slot[0])
    snprintf(slot, WHY_MAX, "%s", why);
}

static void malformed(scan *s, const char *why) {
  s->malformed++;
  s->res->signatures++;
  char msg[WHY_MAX];
  snprintf(msg, sizeof msg, "malformed signature: %s", why);
  note(s->why_malformed, msg);
}

/* One layer of a signature manifest: a payload and its signature. */
static fl_code check_layer(scan *s, json_t *layer, fl_error *err) {
  const char *mt = json_string_value(json_object_get(layer, "mediaType"));
  if (!mt || strcmp(mt, FL_COSIGN_PAYLOAD_MT) != 0)
    return FL_OK; /* not a signature layer */
  json_t *ann = json_object_get(layer, "annotations");
  const char *sig =
      json_string_value(json_object_get(ann, FL_COSIGN_SIG_ANNOTATION));
  int keyless = json_object_get(ann, FL_COSIGN_CERT_ANNOTATION) != NULL;
  const char *bdigest = json_string_value(json_object_get(layer, "digest"));
  json_int_t size = json_integer_value(json_object_get(layer, "size"));
  if (!sig) {
    malformed(s, "a payload layer without the " FL_COSIGN_SIG_ANNOTATION
                 " annotation");
    return FL_OK;
  }
  if (!bdigest || fl_digest_parse(bdigest, NULL, NULL) != FL_OK || size <= 0 ||
      size > FL_TRUST_PAYLOAD_MAX) {
    malformed(s, "the payload layer's digest or size is invalid");
    return FL_OK;
  }
  char *payload;
  size_t plen;
  fl_error berr;
  fl_code rc = fl_endpoint_blob_read(s->ep, s->repo, bdigest, (size_t)size,
                                     &payload, &plen, &berr);
  if (rc == FL_ETOO_LARGE || rc == FL_EDIGEST_MISMATCH) {
    malformed(s, "the payload blob does not match its digest");
    rc = FL_OK;
  } else if (rc == FL_ENOT_FOUND) {
    malformed(s, "the payload blob is missing");
    rc = FL_OK;
  } else if (rc != FL_OK) {
    *err = berr;
  } else {
    unsigned long long matched = 0;
    char why[WHY_MAX];
    fl_sig_status st = fl_cosign_check(s->keys, payload, plen, sig, s->digest,
                                       &matched, why, sizeof why);
    s->res->signatures++;
    if (st == FL_SIG_VALID) {
      s->res->keys |= matched;
    } else if (st == FL_SIG_WRONG_KEY && keyless) {
      s->res->keyless++;
    } else if (st == FL_SIG_WRONG_KEY) {
      s->wrong++;
      note(s->why_wrong, why);
    } else if (st == FL_SIG_DIGEST_MISMATCH) {
      s->mismatch++;
      note(s->why_mismatch, why);
    } else {
      s->malformed++;
      note(s->why_malformed, why);
    }
  }
  free(payload);
  return rc;
}

/* A signature manifest (by digest or tag): every payload layer in it. */
static fl_code check_sig_manifest(scan *s, const char *ref, fl_error *err) {
  fl_manifest m;
  fl_code rc = s->ep->ops->manifest_get(s->ep, s->repo, ref, &m, err);
  if (rc != FL_OK)
    return rc;
  for (size_t i = 0; i < s->nseen; i++)
    if (strcmp(s->seen[i], m.digest) == 0) {
      fl_manifest_clear(&m);
      return FL_OK; /* found both by referrers and by tag */
    }
  if (s->nseen < SEEN_MAX)
    snprintf(s->seen[s->nseen++], FL_DIGEST_STR_MAX, "%s", m.digest);
  json_t *root = json_loadb(m.data, m.len, 0, NULL);
  json_t *layers = json_object_get(root, "layers");
  size_t i;
  json_t *layer;
  json_array_foreach(layers, i, layer) {
    if ((rc = check_layer(s, layer, err)) != FL_OK)
      break;
  }
  json_decref(root);
  fl_manifest_clear(&m);
  return rc;
}

/* The entries of a referrers index that are cosign signatures. */
static fl_code scan_index(scan *s, const fl_manifest *idx, fl_error *err) {
  json_t *root = json_loadb(idx->data, idx->len, 0, NULL);
  fl_code rc = FL_OK;
  size_t i;
  json_t *item;
  json_array_foreach(json_object_get(root, "manifests"), i, item) {
    const char *at = json_string_value(json_object_get(item, "artifactType"));
    const char *d = json_string_value(json_object_get(item, "digest"));
    if (!at || !d)
      continue;
    if (strncmp(at, "application/vnd.dev.sigstore.bundle", 35) == 0)
      s->bundles++;
    if (strcmp(at, FL_COSIGN_SIG_ARTIFACT) != 0)
      continue;
    if (s->nseen >= SEEN_MAX)
      break;
    rc = check_sig_manifest(s, d, err);
    if (rc == FL_ENOT_FOUND)
      rc = FL_OK; /* listed but gone: nothing to verify */
    if (rc != FL_OK)
      break;
    snprintf(s->res->where, sizeof s->res->where, "referrers");
  }
  json_decref(root);
  return rc;
}

/* OCI 1.1 referrers: the API, else the referrers tag schema (sha256-<hex>,
 * an index), for registries without the API. */
static fl_code scan_referrers(scan *s, const char *tag_base, fl_error *err) {
  fl_manifest idx;
  fl_code rc =
      s->ep->ops->referrers
          ? s->ep->ops->referrers(s->ep, s->repo, s->digest, NULL, &idx, err)
          : FL_EUNSUPPORTED;
  if (rc == FL_EUNSUPPORTED) {
    rc = s->ep->ops->manifest_get(s->ep, s->repo, tag_base, &idx, err);
    if (rc == FL_ENOT_FOUND)
      return FL_OK;
    if (rc == FL_OK && !fl_media_type_is_index(idx.media_type)) {
      fl_manifest_clear(&idx);
      return FL_OK;
    }
  }
  if (rc != FL_OK)
    return rc;
  rc = scan_index(s, &idx, err);
  fl_manifest_clear(&idx);
  return rc;
}

/* Names of the keys that made no valid signature, for require: all. */
static void missing_keys(const scan *s, char *out, size_t cap) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < fl_trust_keys_count(s->keys) && used < cap; i++)
    if (!(s->res->keys & (1ull << i)))
      used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? ", " : "",
                               fl_trust_key_name(s->keys, i));
}

static fl_code refuse(const scan *s, fl_trust_require require,
                      const char *tag_base, fl_error *err) {
  const fl_trust_result *r = s->res;
  char what[400];
  snprintf(what, sizeof what, "%s@%s: not verified", s->repo, s->digest);
  if (r->keys && require == FL_TRUST_ALL) {
    char missing[256];
    missing_keys(s, missing, sizeof missing);
    return fl_error_set(err, FL_EUNVERIFIED,
                        "%s: no valid signature by %s (require: all)", what,
                        missing);
  }
  if (r->signatures == 0)
    return fl_error_set(
        err, FL_EUNVERIFIED,
        "%s: no signature (no cosign signature in its referrers or in tag "
        "%s.sig)%s",
        what, tag_base,
        s->bundles ? "; it has sigstore bundles, a format not supported" : "");
  /* The most telling reason first. */
  const char *why = s->mismatch    ? s->why_mismatch
                    : s->malformed ? s->why_malformed
                    : r->keyless && !s->wrong
                        ? "a keyless signature (Fulcio certificate): keyless "
                          "signatures are not supported, give the signer's "
                          "public key"
                        : s->why_wrong;
  if (r->keyless && s->wrong)
    return fl_error_set(err, FL_EUNVERIFIED,
                        "%s: %zu signature(s), none valid: %s; %zu keyless "
                        "(not supported)",
                        what, r->signatures, why, r->keyless);
  return fl_error_set(err, FL_EUNVERIFIED,
                      "%s: %zu signature(s), none valid: %s", what,
                      r->signatures, why);
}

fl_code fl_trust_verify(fl_endpoint *ep, const char *repo, const char *digest,
                        const fl_trust_keys *keys, fl_trust_require require,
                        fl_trust_result *res, fl_error *err) {
  memset(res, 0, sizeof *res);
  size_t nkeys = fl_trust_keys_count(keys);
  if (nkeys == 0)
    return fl_error_set(err, FL_EINVALID,
                        "verification needs at least one "
                        "public key");
  fl_code rc = fl_digest_parse(digest, NULL, err);
  if (rc != FL_OK)
    return rc;
  scan *s = calloc(1, sizeof *s);
  if (!s)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  s->ep = ep;
  s->repo = repo;
  s->digest = digest;
  s->keys = keys;
  s->res = res;
  /* sha256:<hex> -> sha256-<hex>, cosign's tag for the digest */
  char tag_base[FL_DIGEST_STR_MAX], sig_tag[FL_DIGEST_STR_MAX + 8];
  snprintf(tag_base, sizeof tag_base, "%s", digest);
  *strchr(tag_base, ':') = '-';
  snprintf(sig_tag, sizeof sig_tag, "%s.sig", tag_base);

  rc = scan_referrers(s, tag_base, err);
  if (rc == FL_OK) {
    rc = check_sig_manifest(s, sig_tag, err);
    if (rc == FL_OK && !res->where[0])
      snprintf(res->where, sizeof res->where, "tag");
    if (rc == FL_ENOT_FOUND)
      rc = FL_OK;
  }
  if (rc == FL_OK) {
    unsigned long long all = nkeys >= 64 ? ~0ull : ((1ull << nkeys) - 1);
    int ok =
        require == FL_TRUST_ALL ? (res->keys & all) == all : res->keys != 0;
    if (!ok)
      rc = refuse(s, require, tag_base, err);
  }
  free(s);
  return rc;
}
