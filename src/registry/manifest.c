/*
 * manifest.c - classify, check and list the references of image manifests.
 *
 * See manifest.h. The bytes of a manifest are never rewritten here; jansson
 * reads them only to learn what they are and what they point at.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/jsonmem.h"
#include "registry/manifest.h"

int fl_media_type_is_index(const char *mt) {
  return strcmp(mt, FL_MT_OCI_INDEX) == 0 || strcmp(mt, FL_MT_DOCKER_LIST) == 0;
}

int fl_media_type_is_manifest(const char *mt) {
  return strcmp(mt, FL_MT_OCI_MANIFEST) == 0 ||
         strcmp(mt, FL_MT_DOCKER_MANIFEST) == 0;
}

static int is_schema1(const char *mt) {
  return strcmp(mt, FL_MT_DOCKER_SCHEMA1) == 0 ||
         strcmp(mt, FL_MT_DOCKER_SCHEMA1_SIGNED) == 0;
}

static void copy_str(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

/* The media type from the JSON, else the declared one, else by shape. */
static const char *detect_media_type(json_t *root, const char *declared) {
  const char *mt = json_string_value(json_object_get(root, "mediaType"));
  if (mt && *mt)
    return mt;
  if (declared && *declared && strcmp(declared, "application/json") != 0 &&
      strcmp(declared, "text/plain") != 0)
    return declared;
  if (json_is_array(json_object_get(root, "manifests")))
    return FL_MT_OCI_INDEX;
  if (json_is_object(json_object_get(root, "config")))
    return FL_MT_OCI_MANIFEST;
  return NULL;
}

fl_code fl_manifest_check(fl_manifest *m, const char *declared,
                          const char *expected_digest, fl_error *err) {
  fl_code rc = FL_OK;
  json_t *root = NULL;
  fl_digest_alg alg = FL_SHA256;
  if (m->len > FL_MANIFEST_MAX)
    return fl_error_set(err, FL_ETOO_LARGE,
                        "manifest is %zu bytes, over the %d byte limit", m->len,
                        FL_MANIFEST_MAX);
  if (expected_digest && *expected_digest) {
    rc = fl_digest_parse(expected_digest, &alg, err);
    if (rc != FL_OK)
      return rc;
  }
  if (fl_digest_buffer(alg, m->data, m->len, m->digest) != FL_OK)
    return fl_error_set(err, FL_ENOMEM, "out of memory hashing a manifest");
  if (expected_digest && *expected_digest &&
      strcmp(expected_digest, m->digest) != 0)
    return fl_error_set(err, FL_EDIGEST_MISMATCH,
                        "manifest content hashes to %s, expected %s", m->digest,
                        expected_digest);
  json_error_t jerr;
  int oom;
  root = fl_json_loadb(m->data, m->len, &jerr, &oom);
  if (oom) {
    rc = fl_error_set(err, FL_ENOMEM,
                      "out of memory reading a %zu-byte "
                      "manifest",
                      m->len);
    goto out;
  }
  if (!root || !json_is_object(root)) {
    rc = fl_error_set(err, FL_EINVALID,
                      "manifest is not a JSON object (line %d, column %d: %s)",
                      jerr.line, jerr.column,
                      root ? "not an object" : jerr.text);
    goto out;
  }
  json_int_t schema =
      json_integer_value(json_object_get(root, "schemaVersion"));
  const char *mt = detect_media_type(root, declared);
  if (schema == 1 || (mt && is_schema1(mt))) {
    rc = fl_error_set(err, FL_EUNSUPPORTED,
                      "manifest is Docker schema 1, which is deprecated and "
                      "not supported; re-push the image with a current client");
    goto out;
  }
  if (!mt) {
    rc = fl_error_set(err, FL_EUNSUPPORTED,
                      "manifest has no mediaType and is neither an image "
                      "manifest nor an index");
    goto out;
  }
  copy_str(m->media_type, sizeof m->media_type, mt);
out:
  json_decref(root);
  return rc;
}

static fl_code read_descriptor(json_t *obj, fl_descriptor *d, const char *what,
                               fl_error *err) {
  const char *mt = json_string_value(json_object_get(obj, "mediaType"));
  const char *digest = json_string_value(json_object_get(obj, "digest"));
  json_t *size = json_object_get(obj, "size");
  if (!json_is_object(obj) || !digest || !json_is_integer(size) ||
      json_integer_value(size) < 0)
    return fl_error_set(err, FL_EINVALID,
                        "manifest %s descriptor lacks a digest or size", what);
  fl_code rc = fl_digest_parse(digest, NULL, err);
  if (rc != FL_OK) {
    fl_error_prefix(err, "manifest %s descriptor: ", what);
    return rc;
  }
  copy_str(d->media_type, sizeof d->media_type, mt);
  copy_str(d->digest, sizeof d->digest, digest);
  d->size = (uint64_t)json_integer_value(size);
  return FL_OK;
}

static fl_code add_ref(fl_manifest_info *info, size_t *cap, fl_ref_desc **out) {
  if (info->nrefs == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    fl_ref_desc *refs = realloc(info->refs, ncap * sizeof *refs);
    if (!refs)
      return FL_ENOMEM;
    info->refs = refs;
    *cap = ncap;
  }
  *out = &info->refs[info->nrefs++];
  memset(*out, 0, sizeof **out);
  return FL_OK;
}

static fl_code add_descriptor(fl_manifest_info *info, size_t *cap, json_t *obj,
                              fl_desc_role role, const char *what,
                              fl_error *err) {
  fl_ref_desc *r;
  if (add_ref(info, cap, &r) != FL_OK)
    return fl_error_set(err, FL_ENOMEM, "out of memory reading a manifest");
  r->role = role;
  fl_code rc = read_descriptor(obj, &r->desc, what, err);
  if (rc != FL_OK)
    return rc;
  json_t *p = json_object_get(obj, "platform");
  if (json_is_object(p)) {
    r->has_platform = 1;
    copy_str(r->platform.os, sizeof r->platform.os,
             json_string_value(json_object_get(p, "os")));
    copy_str(r->platform.architecture, sizeof r->platform.architecture,
             json_string_value(json_object_get(p, "architecture")));
    copy_str(r->platform.variant, sizeof r->platform.variant,
             json_string_value(json_object_get(p, "variant")));
  }
  return FL_OK;
}

fl_code fl_manifest_parse(const fl_manifest *m, fl_manifest_info *out,
                          fl_error *err) {
  fl_code rc = FL_OK;
  size_t cap = 0;
  json_error_t jerr;
  int oom;
  memset(out, 0, sizeof *out);
  json_t *root = fl_json_loadb(m->data, m->len, &jerr, &oom);
  if (oom) {
    rc = fl_error_set(err, FL_ENOMEM,
                      "out of memory reading a %zu-byte "
                      "manifest",
                      m->len);
    goto out;
  }
  if (!json_is_object(root)) {
    rc = fl_error_set(err, FL_EINVALID, "manifest is not a JSON object");
    goto out;
  }
  copy_str(out->media_type, sizeof out->media_type, m->media_type);
  copy_str(out->artifact_type, sizeof out->artifact_type,
           json_string_value(json_object_get(root, "artifactType")));
  out->is_index = fl_media_type_is_index(m->media_type);
  if (out->is_index) {
    json_t *list = json_object_get(root, "manifests");
    size_t i;
    json_t *item;
    if (!json_is_array(list)) {
      rc = fl_error_set(err, FL_EINVALID, "index has no manifests array");
      goto out;
    }
    json_array_foreach(list, i, item) {
      rc = add_descriptor(out, &cap, item, FL_ROLE_MANIFEST, "child", err);
      if (rc != FL_OK)
        goto out;
    }
  } else {
    json_t *config = json_object_get(root, "config");
    json_t *layers = json_object_get(root, "layers");
    size_t i;
    json_t *item;
    if (config) {
      rc = add_descriptor(out, &cap, config, FL_ROLE_CONFIG, "config", err);
      if (rc != FL_OK)
        goto out;
    }
    if (layers && !json_is_array(layers)) {
      rc = fl_error_set(err, FL_EINVALID, "manifest layers is not an array");
      goto out;
    }
    json_array_foreach(layers, i, item) {
      rc = add_descriptor(out, &cap, item, FL_ROLE_LAYER, "layer", err);
      if (rc != FL_OK)
        goto out;
    }
  }
  json_t *subject = json_object_get(root, "subject");
  if (subject)
    rc = add_descriptor(out, &cap, subject, FL_ROLE_SUBJECT, "subject", err);
out:
  json_decref(root);
  if (rc != FL_OK)
    fl_manifest_info_clear(out);
  return rc;
}

void fl_manifest_info_clear(fl_manifest_info *info) {
  free(info->refs);
  memset(info, 0, sizeof *info);
}

fl_code fl_platform_parse(const char *s, fl_platform *p, fl_error *err) {
  memset(p, 0, sizeof *p);
  const char *a = strchr(s, '/');
  if (!a || a == s || !a[1])
    return fl_error_set(err, FL_EINVALID,
                        "invalid platform \"%s\": expected OS/ARCH[/VARIANT], "
                        "e.g. linux/arm64/v8",
                        s);
  const char *v = strchr(a + 1, '/');
  size_t oslen = (size_t)(a - s);
  size_t archlen = v ? (size_t)(v - a - 1) : strlen(a + 1);
  if (oslen >= sizeof p->os || archlen == 0 ||
      archlen >= sizeof p->architecture ||
      (v &&
       (!v[1] || strlen(v + 1) >= sizeof p->variant || strchr(v + 1, '/'))))
    return fl_error_set(err, FL_EINVALID,
                        "invalid platform \"%s\": expected OS/ARCH[/VARIANT]",
                        s);
  memcpy(p->os, s, oslen);
  memcpy(p->architecture, a + 1, archlen);
  if (v)
    copy_str(p->variant, sizeof p->variant, v + 1);
  return FL_OK;
}

static const char *normal_variant(const fl_platform *p) {
  if (strcmp(p->architecture, "arm64") == 0 && strcmp(p->variant, "v8") == 0)
    return "";
  return p->variant;
}

int fl_platform_match(const fl_platform *want, const fl_platform *have) {
  if (strcmp(want->os, have->os) != 0 ||
      strcmp(want->architecture, have->architecture) != 0)
    return 0;
  if (!want->variant[0])
    return 1;
  return strcmp(normal_variant(want), normal_variant(have)) == 0;
}
