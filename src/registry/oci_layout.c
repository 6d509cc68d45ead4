/*
 * oci_layout.c - the oci:PATH transport: an OCI image layout directory
 * (oci-layout, index.json, blobs/<alg>/<hex>) behind the endpoint interface.
 *
 * Blobs are streamed through one 256 KiB buffer, hashed while written to a
 * temp file next to their final name, and renamed into place only when size
 * and digest match; no path ever leaves a temp file behind. Tags live in
 * index.json as descriptors annotated with org.opencontainers.image.ref.name;
 * index.json is edited as a jansson tree (unknown fields and descriptors are
 * kept) and replaced atomically. Its read-modify-write is serialised by the
 * endpoint's mutex (threads) and by flock on the layout directory (other
 * processes); the lock is on the directory because index.json itself is
 * replaced by rename, so a lock on it would lock the old file. Readers need
 * no lock: they always see a whole index.json, old or new.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/fsutil.h"
#include "registry/oci_layout.h"
#include "registry/reference.h"

#define CHUNK (256 * 1024)
/* index.json grows with tags, but stays bounded. */
#define INDEX_MAX (64 * 1024 * 1024)
#define LAYOUT_FILE_MAX (64 * 1024)
#define REF_NAME "org.opencontainers.image.ref.name"
#define LAYOUT_VERSION "1.0.0"
#define LAYOUT_JSON "{\"imageLayoutVersion\":\"" LAYOUT_VERSION "\"}"

static const char empty_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" FL_MT_OCI_INDEX
    "\",\"manifests\":[]}";

typedef struct oci_ep {
  fl_endpoint base;
  pthread_mutex_t lock; /* serialises index.json read-modify-write */
  char *path;
  char *desc; /* "oci:PATH" */
} oci_ep;

/* ---- paths and file helpers ---------------------------------------------- */

static fl_code path_fmt(char *out, size_t cap, fl_error *err, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static fl_code path_fmt(char *out, size_t cap, fl_error *err, const char *fmt,
                        ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, cap, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= cap)
    return fl_error_set(err, FL_EINVALID, "path too long: %.200s...", out);
  return FL_OK;
}

/* Validate digest and build blobs/<alg> and blobs/<alg>/<hex> under the
 * layout. Nothing else ever turns a digest into a path. */
static fl_code blob_paths(const oci_ep *ep, const char *digest,
                          fl_digest_alg *alg, char *dir, char *file,
                          fl_error *err) {
  fl_digest_alg a = FL_SHA256;
  if (!digest)
    return fl_error_set(err, FL_EINVALID, "missing digest");
  fl_code rc = fl_digest_parse(digest, &a, err);
  if (rc != FL_OK)
    return rc;
  if (alg)
    *alg = a;
  const char *hex = strchr(digest, ':') + 1;
  rc = path_fmt(dir, PATH_MAX, err, "%s/blobs/%s", ep->path,
                fl_digest_alg_name(a));
  if (rc == FL_OK)
    rc = path_fmt(file, PATH_MAX, err, "%s/%s", dir, hex);
  return rc;
}

/* ---- JSON helpers -------------------------------------------------------- */

static const char *json_str(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

static const char *desc_ref_name(const json_t *d) {
  return json_str(json_object_get(d, "annotations"), REF_NAME);
}

static fl_code copy_str(char *dst, size_t cap, const char *src,
                        const char *what, fl_error *err) {
  size_t n = strlen(src);
  if (n >= cap)
    return fl_error_set(err, FL_EINVALID, "%s is too long (%zu bytes)", what,
                        n);
  memcpy(dst, src, n + 1);
  return FL_OK;
}

static fl_code parse_json(const char *data, size_t len, const char *what,
                          json_t **out, fl_error *err) {
  json_error_t jerr;
  json_t *root = json_loadb(data, len, 0, &jerr);
  if (!root)
    return fl_error_set(err, FL_EINVALID, "%s is not valid JSON: line %d: %s",
                        what, jerr.line, jerr.text);
  if (!json_is_object(root)) {
    json_decref(root);
    return fl_error_set(err, FL_EINVALID, "%s is not a JSON object", what);
  }
  *out = root;
  return FL_OK;
}

/* Media type of a manifest: `declared` when given, else its mediaType field,
 * else from its shape. Schema 1 is refused. */
static fl_code manifest_type(const json_t *m, const char *declared,
                             const char *what, char mt[FL_MEDIA_TYPE_MAX],
                             fl_error *err) {
  const char *field = json_str(m, "mediaType");
  json_t *sv = json_object_get(m, "schemaVersion");
  if ((json_is_integer(sv) && json_integer_value(sv) == 1) ||
      (field && (!strcmp(field, FL_MT_DOCKER_SCHEMA1) ||
                 !strcmp(field, FL_MT_DOCKER_SCHEMA1_SIGNED))))
    return fl_error_set(err, FL_EUNSUPPORTED,
                        "%s is a Docker schema 1 manifest, which is not "
                        "supported",
                        what);
  const char *t = declared && *declared ? declared : field;
  if (!t || !*t) {
    if (json_is_array(json_object_get(m, "manifests")))
      t = FL_MT_OCI_INDEX;
    else if (json_is_object(json_object_get(m, "config")))
      t = FL_MT_OCI_MANIFEST;
    else
      return fl_error_set(err, FL_EINVALID,
                          "%s has no mediaType and is neither an image "
                          "manifest nor an index",
                          what);
  }
  return copy_str(mt, FL_MEDIA_TYPE_MAX, t, "media type", err);
}

/* ---- references ---------------------------------------------------------- */

/* A reference is a digest when it holds a ':' (no tag can), checked by the
 * one digest grammar (reference.c); anything else is a tag, looked up as it
 * is: tags already in index.json are data, whatever wrote them. Tags that
 * this endpoint writes are checked with fl_ref_check_tag. */
static fl_code classify(const char *ref, int *is_digest, fl_error *err) {
  *is_digest = 0;
  if (!ref || !*ref)
    return fl_error_set(err, FL_EINVALID, "empty tag or digest");
  *is_digest = strchr(ref, ':') != NULL;
  return *is_digest ? fl_ref_check_digest(ref, NULL, err) : FL_OK;
}

/* ---- index.json ---------------------------------------------------------- */

static fl_code index_path(const oci_ep *ep, char *out, fl_error *err) {
  return path_fmt(out, PATH_MAX, err, "%s/index.json", ep->path);
}

/* Load index.json (a missing one reads as an empty index). The result is an
 * object whose "manifests" is an array. */
static fl_code index_load(const oci_ep *ep, json_t **out, fl_error *err) {
  char path[PATH_MAX];
  char *data = NULL;
  size_t len = 0;
  json_t *root = NULL;
  fl_code rc = index_path(ep, path, err);
  if (rc != FL_OK)
    return rc;
  rc = fl_fs_read_file(path, NULL, INDEX_MAX, FL_FS_REGULAR, &data, &len, err);
  if (rc == FL_ENOT_FOUND)
    rc = parse_json(empty_index, strlen(empty_index), path, &root, err);
  else if (rc == FL_OK)
    rc = parse_json(data, len, path, &root, err);
  free(data);
  if (rc != FL_OK)
    return rc;
  json_t *manifests = json_object_get(root, "manifests");
  if (!manifests) {
    manifests = json_array();
    if (!manifests || json_object_set_new(root, "manifests", manifests)) {
      json_decref(root);
      return fl_error_set(err, FL_ENOMEM, "out of memory reading %s", path);
    }
  }
  if (!json_is_array(manifests)) {
    json_decref(root);
    return fl_error_set(err, FL_EINVALID, "%s: \"manifests\" is not an array",
                        path);
  }
  *out = root;
  return FL_OK;
}

static fl_code index_save(const oci_ep *ep, json_t *root, fl_error *err) {
  char path[PATH_MAX];
  fl_code rc = index_path(ep, path, err);
  if (rc != FL_OK)
    return rc;
  if (json_object_set_new(root, "schemaVersion", json_integer(2)) ||
      json_object_set_new(root, "mediaType", json_string(FL_MT_OCI_INDEX)))
    return fl_error_set(err, FL_ENOMEM, "out of memory writing %s", path);
  char *text = json_dumps(root, JSON_COMPACT);
  if (!text)
    return fl_error_set(err, FL_ENOMEM, "out of memory writing %s", path);
  rc = fl_fs_write_atomic(path, text, strlen(text), err);
  free(text);
  return rc;
}

/* An edit of index.json's manifests array; sets *changed when it modified
 * it. */
typedef fl_code (*index_edit_fn)(json_t *manifests, void *ud, int *changed,
                                 fl_error *err);

/* Exclusive lock on the layout directory against other processes. */
static fl_code lock_dir(const char *path, int *fd, fl_error *err) {
  *fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*fd < 0)
    return fl_fs_error(err, FL_OK, errno, "open directory", path);
  while (flock(*fd, LOCK_EX) != 0) {
    if (errno == EINTR)
      continue;
    fl_code rc = fl_fs_error(err, FL_OK, errno, "lock", path);
    close(*fd);
    *fd = -1;
    return rc;
  }
  return FL_OK;
}

/* Read-modify-write of index.json under the mutex and the directory lock. */
static fl_code index_update(oci_ep *ep, index_edit_fn edit, void *ud,
                            fl_error *err) {
  json_t *root = NULL;
  int changed = 0;
  int dirfd = -1;
  pthread_mutex_lock(&ep->lock);
  fl_code rc = lock_dir(ep->path, &dirfd, err);
  if (rc != FL_OK)
    goto out;
  if ((rc = index_load(ep, &root, err)) != FL_OK)
    goto out;
  rc = edit(json_object_get(root, "manifests"), ud, &changed, err);
  if (rc == FL_OK && changed)
    rc = index_save(ep, root, err);
out:
  json_decref(root);
  if (dirfd >= 0)
    close(dirfd); /* releases the flock */
  pthread_mutex_unlock(&ep->lock);
  return rc;
}

/* Fill out from an index.json descriptor. */
static fl_code desc_from_json(const oci_ep *ep, const json_t *d,
                              fl_descriptor *out, fl_error *err) {
  const char *digest = json_str(d, "digest");
  const char *mt = json_str(d, "mediaType");
  json_t *size = json_object_get(d, "size");
  memset(out, 0, sizeof *out);
  if (!digest || fl_digest_parse(digest, NULL, NULL) != FL_OK)
    return fl_error_set(err, FL_EINVALID,
                        "%s/index.json: descriptor with a missing or invalid "
                        "digest \"%.80s\"",
                        ep->path, digest ? digest : "");
  if (!json_is_integer(size) || json_integer_value(size) < 0)
    return fl_error_set(err, FL_EINVALID,
                        "%s/index.json: descriptor %s has no valid size",
                        ep->path, digest);
  strcpy(out->digest, digest);
  out->size = (uint64_t)json_integer_value(size);
  return mt ? copy_str(out->media_type, sizeof out->media_type, mt,
                       "media type", err)
            : FL_OK;
}

static fl_code index_find_tag(const oci_ep *ep, const char *tag,
                              fl_descriptor *out, fl_error *err) {
  json_t *root = NULL;
  fl_code rc = index_load(ep, &root, err);
  if (rc != FL_OK)
    return rc;
  json_t *manifests = json_object_get(root, "manifests");
  size_t i;
  json_t *d, *found = NULL;
  json_array_foreach(manifests, i, d) {
    const char *name = desc_ref_name(d);
    if (name && !strcmp(name, tag)) {
      found = d;
      break;
    }
  }
  if (found)
    rc = desc_from_json(ep, found, out, err);
  else
    rc = fl_error_set(err, FL_ENOT_FOUND, "tag %s not found in OCI layout %s",
                      tag, ep->path);
  json_decref(root);
  return rc;
}

/* ---- manifests ----------------------------------------------------------- */

/* Read blob `digest` as a manifest: size limit (stat first), digest check. */
static fl_code read_manifest_blob(const oci_ep *ep, const char *digest,
                                  char **data, size_t *len, fl_error *err) {
  char dir[PATH_MAX], file[PATH_MAX], actual[FL_DIGEST_STR_MAX];
  fl_digest_alg alg = FL_SHA256;
  fl_code rc = blob_paths(ep, digest, &alg, dir, file, err);
  if (rc != FL_OK)
    return rc;
  rc = fl_fs_read_file(file, NULL, FL_MANIFEST_MAX, FL_FS_REGULAR, data, len,
                       err);
  if (rc == FL_ENOT_FOUND)
    return fl_error_set(err, rc, "manifest %s not found in OCI layout %s",
                        digest, ep->path);
  if (rc != FL_OK) {
    fl_error_prefix(err, "manifest %s: ", digest);
    return rc;
  }
  rc = fl_digest_buffer(alg, *data, *len, actual);
  if (rc == FL_OK && strcmp(actual, digest) != 0)
    rc = fl_error_set(err, FL_EDIGEST_MISMATCH,
                      "manifest %s in OCI layout %s is corrupt: %s hashes to "
                      "%s",
                      digest, ep->path, file, actual);
  else if (rc != FL_OK)
    fl_error_set(err, rc, "hashing %s failed", file);
  if (rc != FL_OK) {
    free(*data);
    *data = NULL;
  }
  return rc;
}

static fl_code oci_manifest_get(fl_endpoint *e, const char *repo,
                                const char *reference, fl_manifest *out,
                                fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  fl_descriptor d = {0};
  char *data = NULL;
  size_t len = 0;
  json_t *m = NULL;
  int is_digest;
  fl_code rc = classify(reference, &is_digest, err);
  if (rc != FL_OK)
    return rc;
  if (is_digest)
    strcpy(d.digest, reference);
  else if ((rc = index_find_tag(ep, reference, &d, err)) != FL_OK)
    return rc;
  if ((rc = read_manifest_blob(ep, d.digest, &data, &len, err)) != FL_OK)
    return rc;
  if ((rc = parse_json(data, len, d.digest, &m, err)) != FL_OK)
    goto out;
  if ((rc = manifest_type(m, d.media_type, d.digest, out->media_type, err)))
    goto out;
  strcpy(out->digest, d.digest);
  out->data = data;
  out->len = len;
  data = NULL;
out:
  json_decref(m);
  free(data);
  return rc;
}

static fl_code oci_manifest_head(fl_endpoint *e, const char *repo,
                                 const char *reference, fl_descriptor *out,
                                 fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  char dir[PATH_MAX], file[PATH_MAX];
  fl_descriptor d = {0};
  char *data = NULL;
  size_t len = 0;
  json_t *m = NULL;
  int is_digest;
  fl_code rc = classify(reference, &is_digest, err);
  if (rc != FL_OK)
    return rc;
  if (!is_digest) {
    if ((rc = index_find_tag(ep, reference, &d, err)) != FL_OK)
      return rc;
    if (d.media_type[0]) {
      *out = d;
      return FL_OK;
    }
  } else {
    strcpy(d.digest, reference);
  }
  /* By digest (or a tag whose descriptor lacks mediaType): the blob tells. */
  if ((rc = blob_paths(ep, d.digest, NULL, dir, file, err)) != FL_OK)
    return rc;
  rc = fl_fs_read_file(file, NULL, FL_MANIFEST_MAX, FL_FS_REGULAR, &data, &len,
                       err);
  if (rc == FL_ENOT_FOUND)
    return fl_error_set(err, rc, "manifest %s not found in OCI layout %s",
                        d.digest, ep->path);
  if (rc != FL_OK)
    return rc;
  if ((rc = parse_json(data, len, file, &m, err)) != FL_OK)
    goto out;
  if ((rc = manifest_type(m, NULL, d.digest, d.media_type, err)) != FL_OK)
    goto out;
  d.size = len;
  *out = d;
out:
  json_decref(m);
  free(data);
  return rc;
}

/* Write a content-addressed blob from memory unless it is already there. */
static fl_code put_small_blob(const oci_ep *ep, const char *digest,
                              const void *data, size_t len, fl_error *err) {
  char dir[PATH_MAX], file[PATH_MAX];
  struct stat st;
  fl_code rc = blob_paths(ep, digest, NULL, dir, file, err);
  if (rc != FL_OK)
    return rc;
  if (stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
      (uint64_t)st.st_size == len)
    return FL_OK;
  if ((rc = fl_fs_mkdir_p(dir, 0755, err)) != FL_OK)
    return rc;
  return fl_fs_write_atomic(file, data, len, err);
}

typedef struct tag_edit {
  const char *tag;
  json_t *desc; /* the new descriptor (borrowed) */
} tag_edit;

/* Point tag at t->desc: descriptors carrying the same ref.name lose it and,
 * since a descriptor holds one ref.name, are removed; the new descriptor
 * takes the place of the first of them, or is appended. */
static fl_code edit_set_tag(json_t *manifests, void *ud, int *changed,
                            fl_error *err) {
  tag_edit *t = ud;
  size_t i = 0, at = json_array_size(manifests);
  int found = 0;
  while (i < json_array_size(manifests)) {
    json_t *d = json_array_get(manifests, i);
    const char *name = desc_ref_name(d);
    if (name && !strcmp(name, t->tag)) {
      json_object_del(json_object_get(d, "annotations"), REF_NAME);
      if (!desc_ref_name(d)) {
        if (!found)
          at = i;
        found = 1;
        json_array_remove(manifests, i);
        continue;
      }
    }
    i++;
  }
  if (json_array_insert(manifests, at, t->desc))
    return fl_error_set(err, FL_ENOMEM, "out of memory tagging %s", t->tag);
  *changed = 1;
  return FL_OK;
}

/* Add an untagged descriptor unless one with the same digest is listed. */
static fl_code edit_add_untagged(json_t *manifests, void *ud, int *changed,
                                 fl_error *err) {
  json_t *desc = ud;
  const char *digest = json_str(desc, "digest");
  size_t i;
  json_t *d;
  json_array_foreach(manifests, i, d) {
    const char *dd = json_str(d, "digest");
    if (dd && !strcmp(dd, digest))
      return FL_OK;
  }
  if (json_array_append(manifests, desc))
    return fl_error_set(err, FL_ENOMEM, "out of memory listing %s", digest);
  *changed = 1;
  return FL_OK;
}

/* The index.json descriptor of a manifest being put. */
static json_t *new_descriptor(const char *mt, const char *digest, size_t len,
                              const json_t *m, const char *tag) {
  json_t *d = json_object();
  const char *artifact = json_str(m, "artifactType");
  if (!d || json_object_set_new(d, "mediaType", json_string(mt)) ||
      json_object_set_new(d, "digest", json_string(digest)) ||
      json_object_set_new(d, "size", json_integer((json_int_t)len)) ||
      (artifact &&
       json_object_set_new(d, "artifactType", json_string(artifact))) ||
      (tag && json_object_set_new(d, "annotations",
                                  json_pack("{s:s}", REF_NAME, tag)))) {
    json_decref(d);
    return NULL;
  }
  return d;
}

/* Digest of data with the algorithm of `want` (sha256 when NULL); when want
 * is given the data must hash to it. */
static fl_code manifest_digest(const void *data, size_t len, const char *want,
                               char out[FL_DIGEST_STR_MAX], fl_error *err) {
  fl_digest_alg alg = FL_SHA256;
  fl_code rc = want ? fl_digest_parse(want, &alg, err) : FL_OK;
  if (rc != FL_OK)
    return rc;
  if (fl_digest_buffer(alg, data, len, out) != FL_OK)
    return fl_error_set(err, FL_ENOMEM, "out of memory hashing a manifest");
  if (want && strcmp(want, out) != 0)
    return fl_error_set(err, FL_EDIGEST_MISMATCH,
                        "manifest pushed as %s hashes to %s (%zu bytes)", want,
                        out, len);
  return FL_OK;
}

/* Put the manifest blob; a tag also goes into index.json. A digest put only
 * writes the blob, except that a manifest with a subject is listed untagged
 * in index.json so that referrers() can find it. */
static fl_code oci_manifest_put(fl_endpoint *e, const char *repo,
                                const char *reference, const void *data,
                                size_t len, const char *media_type,
                                fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  char digest[FL_DIGEST_STR_MAX], mt[FL_MEDIA_TYPE_MAX];
  json_t *m = NULL, *desc = NULL;
  int is_digest;
  fl_code rc = classify(reference, &is_digest, err);
  if (rc == FL_OK && !is_digest)
    rc = fl_ref_check_tag(reference, err); /* a tag written must be one */
  if (rc != FL_OK)
    return rc;
  if (len > FL_MANIFEST_MAX)
    return fl_error_set(err, FL_ETOO_LARGE,
                        "manifest for %s is %zu bytes, over the limit of %d "
                        "bytes",
                        reference, len, FL_MANIFEST_MAX);
  if ((rc = parse_json(data, len, "manifest", &m, err)) != FL_OK)
    goto out;
  if ((rc = manifest_type(m, media_type, "manifest", mt, err)) != FL_OK)
    goto out;
  const char *field = json_str(m, "mediaType");
  if (field && strcmp(field, mt) != 0) {
    rc = fl_error_set(err, FL_EINVALID,
                      "manifest for %s: put as %s but its mediaType is %s",
                      reference, mt, field);
    goto out;
  }
  rc = manifest_digest(data, len, is_digest ? reference : NULL, digest, err);
  if (rc != FL_OK)
    goto out;
  if ((rc = put_small_blob(ep, digest, data, len, err)) != FL_OK)
    goto out;
  if (is_digest && !json_object_get(m, "subject"))
    goto out;
  desc = new_descriptor(mt, digest, len, m, is_digest ? NULL : reference);
  if (!desc) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory tagging %s", reference);
    goto out;
  }
  if (is_digest) {
    rc = index_update(ep, edit_add_untagged, desc, err);
  } else {
    tag_edit t = {reference, desc};
    rc = index_update(ep, edit_set_tag, &t, err);
  }
out:
  json_decref(desc);
  json_decref(m);
  return rc;
}

typedef struct delete_edit {
  const char *reference;
  int is_digest;
  size_t removed;
} delete_edit;

static fl_code edit_delete(json_t *manifests, void *ud, int *changed,
                           fl_error *err) {
  (void)err;
  delete_edit *de = ud;
  size_t i = 0;
  while (i < json_array_size(manifests)) {
    json_t *d = json_array_get(manifests, i);
    const char *v = de->is_digest ? json_str(d, "digest") : desc_ref_name(d);
    if (v && !strcmp(v, de->reference)) {
      json_array_remove(manifests, i);
      de->removed++;
      *changed = 1;
      continue;
    }
    i++;
  }
  return FL_OK;
}

/* A tag: drop it from index.json. A digest: drop every descriptor of it
 * (blobs stay: there is no garbage collection). */
static fl_code oci_manifest_delete(fl_endpoint *e, const char *repo,
                                   const char *reference, fl_error *err) {
  oci_ep *ep = (oci_ep *)e;
  delete_edit de = {reference, 0, 0};
  fl_code rc = classify(reference, &de.is_digest, err);
  if (rc != FL_OK)
    return rc;
  if ((rc = index_update(ep, edit_delete, &de, err)) != FL_OK)
    return rc;
  if (de.removed)
    return FL_OK;
  if (!de.is_digest)
    return fl_error_set(err, FL_ENOT_FOUND, "tag %s not found in OCI layout %s",
                        reference, ep->path);
  uint64_t size;
  rc = e->ops->blob_exists(e, repo, reference, &size, err);
  if (rc == FL_ENOT_FOUND)
    fl_error_set(err, rc, "manifest %s not found in OCI layout %s", reference,
                 ep->path);
  return rc;
}

/* ---- blobs --------------------------------------------------------------- */

static fl_code oci_blob_exists(fl_endpoint *e, const char *repo,
                               const char *digest, uint64_t *size,
                               fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  char dir[PATH_MAX], file[PATH_MAX];
  struct stat st;
  fl_code rc = blob_paths(ep, digest, NULL, dir, file, err);
  if (rc != FL_OK)
    return rc;
  if (stat(file, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return fl_error_set(err, FL_ENOT_FOUND,
                          "blob %s not found in OCI layout %s", digest,
                          ep->path);
    return fl_fs_error(err, FL_OK, errno, "stat", file);
  }
  if (!S_ISREG(st.st_mode))
    return fl_error_set(err, FL_EINVALID, "%s is not a regular file", file);
  if (size)
    *size = (uint64_t)st.st_size;
  return FL_OK;
}

/* Push the bytes of fd from offset into sink, one CHUNK at a time. */
static fl_code stream_fd(int fd, const char *file, uint64_t offset,
                         fl_sink *sink, fl_error *err) {
  unsigned char *buf = malloc(CHUNK);
  fl_code rc = FL_OK;
  if (!buf)
    return fl_error_set(err, FL_ENOMEM, "out of memory reading %s", file);
  for (;;) {
    ssize_t n = pread(fd, buf, CHUNK, (off_t)offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = fl_error_set(err, FL_EIO, "cannot read %s: %s", file,
                        strerror(errno));
      break;
    }
    if (n == 0)
      break;
    offset += (uint64_t)n;
    if ((rc = sink->write(sink->ud, buf, (size_t)n, err)) != FL_OK)
      break;
  }
  free(buf);
  return rc;
}

static fl_code oci_blob_get(fl_endpoint *e, const char *repo,
                            const char *digest, uint64_t offset, fl_sink *sink,
                            fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  char dir[PATH_MAX], file[PATH_MAX];
  struct stat st;
  fl_code rc = blob_paths(ep, digest, NULL, dir, file, err);
  if (rc != FL_OK)
    return rc;
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return fl_error_set(err, FL_ENOT_FOUND,
                          "blob %s not found in OCI layout %s", digest,
                          ep->path);
    return fl_fs_error(err, FL_OK, errno, "open", file);
  }
  if (fstat(fd, &st) != 0) {
    rc = fl_fs_error(err, FL_OK, errno, "stat", file);
    goto out;
  }
  if (offset > (uint64_t)st.st_size) {
    rc = fl_error_set(
        err, FL_EINVALID, "blob %s: offset %llu is past its end (%lld bytes)",
        digest, (unsigned long long)offset, (long long)st.st_size);
    goto out;
  }
  rc = stream_fd(fd, file, offset, sink, err);
out:
  close(fd);
  return rc;
}

/* Pull src into fd, hashing; stops as soon as it has more than `size`
 * bytes. *total gets the byte count. */
static fl_code copy_source(fl_source *src, int fd, const char *file,
                           fl_hasher *h, unsigned char *buf, uint64_t size,
                           const char *digest, uint64_t *total, fl_error *err) {
  for (;;) {
    fl_error serr = {FL_OK, ""};
    long long n = src->read(src->ud, buf, CHUNK, &serr);
    if (n < 0) {
      fl_code code = serr.code != FL_OK ? serr.code : FL_EIO;
      if (!serr.msg[0])
        snprintf(serr.msg, sizeof serr.msg, "reading blob %s failed", digest);
      return fl_error_set(err, code, "%s", serr.msg);
    }
    if (n == 0)
      return FL_OK;
    if ((unsigned long long)n > CHUNK)
      return fl_error_set(err, FL_EINVALID,
                          "blob %s: source returned %lld bytes for a %d-byte "
                          "read",
                          digest, n, CHUNK);
    *total += (uint64_t)n;
    if (*total > size)
      return fl_error_set(err, FL_EDIGEST_MISMATCH,
                          "blob %s: source gave more than the expected %llu "
                          "bytes",
                          digest, (unsigned long long)size);
    if (fl_hasher_update(h, buf, (size_t)n) != FL_OK)
      return fl_error_set(err, FL_ENOMEM, "hashing blob %s failed", digest);
    fl_code rc = fl_fs_write_all(fd, buf, (size_t)n, file, err);
    if (rc != FL_OK)
      return rc;
  }
}

/* Stream src into a temp file next to the blob, verify size and digest,
 * rename into place. A blob already present with the right size is not
 * uploaded again: FL_OK is returned at once and src is not read at all (the
 * caller owns src and simply stops using it). */
static fl_code oci_blob_put(fl_endpoint *e, const char *repo,
                            const char *digest, uint64_t size, fl_source *src,
                            fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  char dir[PATH_MAX], file[PATH_MAX];
  char actual[FL_DIGEST_STR_MAX];
  fl_fs_temp t;
  unsigned char *buf = NULL;
  fl_hasher *h = NULL;
  fl_digest_alg alg = FL_SHA256;
  uint64_t total = 0;
  struct stat st;
  fl_code rc = blob_paths(ep, digest, &alg, dir, file, err);
  if (rc != FL_OK)
    return rc;
  if (stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
      (uint64_t)st.st_size == size)
    return FL_OK;
  if ((rc = fl_fs_mkdir_p(dir, 0755, err)) != FL_OK)
    return rc;
  if ((rc = fl_fs_temp_open(&t, file, 0644, err)) != FL_OK)
    return rc;
  buf = malloc(CHUNK);
  h = fl_hasher_new(alg);
  if (!buf || !h) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory writing blob %s", digest);
    goto out;
  }
  rc = copy_source(src, t.fd, file, h, buf, size, digest, &total, err);
  if (rc != FL_OK)
    goto out;
  if ((rc = fl_hasher_final(h, actual)) != FL_OK) {
    fl_error_set(err, rc, "hashing blob %s failed", digest);
    goto out;
  }
  if (total != size || strcmp(actual, digest) != 0) {
    rc = fl_error_set(err, FL_EDIGEST_MISMATCH,
                      "blob %s: content hashes to %s (%llu bytes, expected "
                      "%llu)",
                      digest, actual, (unsigned long long)total,
                      (unsigned long long)size);
    goto out;
  }
  rc = fl_fs_temp_commit(&t, err);
out:
  fl_fs_temp_discard(&t);
  fl_hasher_free(h);
  free(buf);
  return rc;
}

/* Same layout, same blobs: a mount succeeds exactly when the blob is here. */
static fl_code oci_blob_mount(fl_endpoint *e, const char *repo,
                              const char *from_repo, const char *digest,
                              fl_error *err) {
  (void)from_repo;
  uint64_t size;
  fl_code rc = oci_blob_exists(e, repo, digest, &size, err);
  if (rc == FL_ENOT_FOUND)
    return fl_error_set(err, FL_EUNSUPPORTED,
                        "blob %s is not in OCI layout %s: nothing to mount",
                        digest, ((oci_ep *)e)->path);
  return rc;
}

static fl_code oci_blob_delete(fl_endpoint *e, const char *repo,
                               const char *digest, fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  char dir[PATH_MAX], file[PATH_MAX];
  fl_code rc = blob_paths(ep, digest, NULL, dir, file, err);
  if (rc != FL_OK)
    return rc;
  if (unlink(file) != 0) {
    if (errno == ENOENT)
      return fl_error_set(err, FL_ENOT_FOUND,
                          "blob %s not found in OCI layout %s", digest,
                          ep->path);
    return fl_fs_error(err, FL_OK, errno, "delete", file);
  }
  return fl_fs_fsync_dir(dir, err);
}

/* ---- referrers ----------------------------------------------------------- */

/* The referrers-index descriptor of manifest m (digest, len bytes). */
static json_t *referrer_entry(const json_t *m, const json_t *listed,
                              const char *digest, size_t len) {
  const char *mt = json_str(m, "mediaType");
  const char *at = json_str(m, "artifactType");
  json_t *ann = json_object_get(m, "annotations");
  if (!mt)
    mt = json_str(listed, "mediaType");
  if (!at)
    at = json_str(json_object_get(m, "config"), "mediaType");
  json_t *d = json_object();
  if (!d ||
      json_object_set_new(d, "mediaType",
                          json_string(mt ? mt : FL_MT_OCI_MANIFEST)) ||
      json_object_set_new(d, "digest", json_string(digest)) ||
      json_object_set_new(d, "size", json_integer((json_int_t)len)) ||
      (at && json_object_set_new(d, "artifactType", json_string(at))) ||
      (json_is_object(ann) &&
       json_object_set_new(d, "annotations", json_deep_copy(ann)))) {
    json_decref(d);
    return NULL;
  }
  return d;
}

static int listed_in(const json_t *arr, const char *digest) {
  size_t i;
  json_t *d;
  json_array_foreach(arr, i, d) {
    const char *dd = json_str(d, "digest");
    if (dd && !strcmp(dd, digest))
      return 1;
  }
  return 0;
}

/* If the manifest of descriptor `listed` has subject `subject`, append its
 * entry to result. Unreadable or non-JSON blobs are skipped: a referrer is a
 * small JSON manifest, and the caller verifies what it later fetches. */
static fl_code check_referrer(const oci_ep *ep, const json_t *listed,
                              const char *subject, const char *artifact_type,
                              json_t *result, fl_error *err) {
  const char *digest = json_str(listed, "digest");
  char *data = NULL;
  size_t len = 0;
  json_t *m = NULL;
  char dir[PATH_MAX], file[PATH_MAX];
  fl_error rerr = {FL_OK, ""};
  if (!digest || listed_in(result, digest) ||
      blob_paths(ep, digest, NULL, dir, file, NULL) != FL_OK)
    return FL_OK;
  fl_code rc = fl_fs_read_file(file, NULL, FL_MANIFEST_MAX, FL_FS_REGULAR,
                               &data, &len, &rerr);
  if (rc == FL_ENOT_FOUND || rc == FL_ETOO_LARGE || rc == FL_EINVALID)
    return FL_OK;
  if (rc != FL_OK)
    return fl_error_set(err, rc, "%s", rerr.msg);
  m = json_loadb(data, len, 0, NULL);
  const char *sd = json_str(json_object_get(m, "subject"), "digest");
  if (sd && !strcmp(sd, subject)) {
    json_t *entry = referrer_entry(m, listed, digest, len);
    const char *at = json_str(entry, "artifactType");
    int keep = !artifact_type || (at && !strcmp(at, artifact_type));
    if (!entry || (keep && json_array_append(result, entry)))
      rc = fl_error_set(err, FL_ENOMEM, "out of memory listing referrers");
    json_decref(entry);
  }
  json_decref(m);
  free(data);
  return rc;
}

static fl_code referrers_output(json_t *list, fl_manifest *out, fl_error *err) {
  json_t *root = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType",
                           FL_MT_OCI_INDEX, "manifests", list);
  char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
  fl_code rc = FL_OK;
  json_decref(root);
  if (!text)
    return fl_error_set(err, FL_ENOMEM, "out of memory listing referrers");
  size_t len = strlen(text);
  char *data = malloc(len + 1);
  if (!data) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory listing referrers");
    goto out;
  }
  memcpy(data, text, len + 1);
  if (fl_digest_buffer(FL_SHA256, data, len, out->digest) != FL_OK) {
    free(data);
    rc = fl_error_set(err, FL_ENOMEM, "out of memory listing referrers");
    goto out;
  }
  out->data = data;
  out->len = len;
  strcpy(out->media_type, FL_MT_OCI_INDEX);
out:
  free(text);
  return rc;
}

/* Manifests listed in index.json whose subject is `digest`. Only listed
 * manifests are seen (a manifest with a subject put by digest is listed). */
static fl_code oci_referrers(fl_endpoint *e, const char *repo,
                             const char *digest, const char *artifact_type,
                             fl_manifest *out, fl_error *err) {
  oci_ep *ep = (oci_ep *)e;
  json_t *root = NULL, *list = NULL;
  (void)repo;
  if (!digest)
    return fl_error_set(err, FL_EINVALID, "missing digest");
  fl_code rc = fl_digest_parse(digest, NULL, err);
  if (rc != FL_OK)
    return rc;
  if ((rc = index_load(ep, &root, err)) != FL_OK)
    return rc;
  if (!(list = json_array())) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory listing referrers");
    goto out;
  }
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(root, "manifests"), i, d) {
    rc = check_referrer(ep, d, digest, artifact_type, list, err);
    if (rc != FL_OK)
      goto out;
  }
  rc = referrers_output(list, out, err);
out:
  json_decref(list);
  json_decref(root);
  return rc;
}

/* ---- repository-level operations ----------------------------------------- */

static fl_code oci_ping(fl_endpoint *e, fl_error *err) {
  oci_ep *ep = (oci_ep *)e;
  char path[PATH_MAX];
  char *data = NULL;
  size_t len = 0;
  json_t *root = NULL;
  fl_code rc = path_fmt(path, sizeof path, err, "%s/oci-layout", ep->path);
  if (rc != FL_OK)
    return rc;
  rc = fl_fs_read_file(path, NULL, LAYOUT_FILE_MAX, FL_FS_REGULAR, &data, &len,
                       err);
  if (rc == FL_ENOT_FOUND)
    return fl_error_set(err, rc,
                        "%s is not an OCI image layout (no oci-layout file)",
                        ep->path);
  if (rc != FL_OK)
    return rc;
  if ((rc = parse_json(data, len, path, &root, err)) != FL_OK)
    goto out;
  const char *v = json_str(root, "imageLayoutVersion");
  if (!v || strcmp(v, LAYOUT_VERSION) != 0)
    rc = fl_error_set(
        err, FL_EINVALID,
        "%s: imageLayoutVersion is %s%s%s, expected \"" LAYOUT_VERSION "\"",
        path, v ? "\"" : "", v ? v : "missing", v ? "\"" : "");
out:
  json_decref(root);
  free(data);
  return rc;
}

static fl_code oci_catalog(fl_endpoint *e, size_t max_items, fl_strlist *out,
                           fl_error *err) {
  (void)max_items;
  if (fl_strlist_push(out, ((oci_ep *)e)->path) != FL_OK)
    return fl_error_set(err, FL_ENOMEM, "out of memory listing repositories");
  return FL_OK;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static fl_code oci_tags(fl_endpoint *e, const char *repo, fl_strlist *out,
                        fl_error *err) {
  (void)repo;
  oci_ep *ep = (oci_ep *)e;
  json_t *root = NULL;
  const char **names = NULL;
  size_t n = 0;
  fl_code rc = index_load(ep, &root, err);
  if (rc != FL_OK)
    return rc;
  json_t *manifests = json_object_get(root, "manifests");
  names = malloc((json_array_size(manifests) + 1) * sizeof *names);
  if (!names) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory listing tags");
    goto out;
  }
  size_t i;
  json_t *d;
  json_array_foreach(manifests, i, d) {
    const char *name = desc_ref_name(d);
    if (name)
      names[n++] = name;
  }
  qsort(names, n, sizeof *names, cmp_str);
  for (i = 0; i < n; i++) {
    if (i > 0 && !strcmp(names[i], names[i - 1]))
      continue;
    if (fl_strlist_push(out, names[i]) != FL_OK) {
      fl_strlist_clear(out);
      rc = fl_error_set(err, FL_ENOMEM, "out of memory listing tags");
      goto out;
    }
  }
out:
  free(names);
  json_decref(root);
  return rc;
}

static const char *oci_describe(fl_endpoint *e) { return ((oci_ep *)e)->desc; }

static void oci_free(fl_endpoint *e) {
  oci_ep *ep = (oci_ep *)e;
  pthread_mutex_destroy(&ep->lock);
  free(ep->path);
  free(ep->desc);
  free(ep);
}

static const fl_endpoint_ops oci_ops = {
    .kind = "oci",
    .ping = oci_ping,
    .catalog = oci_catalog,
    .tags = oci_tags,
    .manifest_get = oci_manifest_get,
    .manifest_head = oci_manifest_head,
    .manifest_put = oci_manifest_put,
    .manifest_delete = oci_manifest_delete,
    .blob_exists = oci_blob_exists,
    .blob_get = oci_blob_get,
    .blob_put = oci_blob_put,
    .blob_mount = oci_blob_mount,
    .blob_delete = oci_blob_delete,
    .referrers = oci_referrers,
    .describe = oci_describe,
    .free = oci_free,
};

/* ---- open ---------------------------------------------------------------- */

/* Write dir/name with content unless it exists. */
static fl_code ensure_file(const char *dir, const char *name,
                           const char *content, fl_error *err) {
  char path[PATH_MAX];
  struct stat st;
  fl_code rc = path_fmt(path, sizeof path, err, "%s/%s", dir, name);
  if (rc != FL_OK)
    return rc;
  if (stat(path, &st) == 0)
    return FL_OK;
  if (errno != ENOENT)
    return fl_fs_error(err, FL_OK, errno, "stat", path);
  return fl_fs_write_atomic(path, content, strlen(content), err);
}

/* mkdir -p, then blobs/, oci-layout and index.json, under the directory
 * lock so two creators cannot clobber each other's index.json. */
static fl_code create_layout(const char *path, fl_error *err) {
  char blobs[PATH_MAX];
  int dirfd = -1;
  fl_code rc = fl_fs_mkdir_p(path, 0755, err);
  if (rc != FL_OK)
    return rc;
  if ((rc = lock_dir(path, &dirfd, err)) != FL_OK)
    return rc;
  if ((rc = path_fmt(blobs, sizeof blobs, err, "%s/blobs", path)) != FL_OK)
    goto out;
  if ((rc = fl_fs_mkdir_p(blobs, 0755, err)) != FL_OK)
    goto out;
  if ((rc = ensure_file(path, "oci-layout", LAYOUT_JSON, err)) != FL_OK)
    goto out;
  rc = ensure_file(path, "index.json", empty_index, err);
out:
  close(dirfd);
  return rc;
}

static fl_code check_layout(const char *path, fl_error *err) {
  char file[PATH_MAX];
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT)
      return fl_error_set(err, FL_ENOT_FOUND, "OCI layout %s does not exist",
                          path);
    return fl_fs_error(err, FL_OK, errno, "stat", path);
  }
  if (!S_ISDIR(st.st_mode))
    return fl_error_set(err, FL_EINVALID,
                        "%s is not an OCI image layout (not a directory)",
                        path);
  fl_code rc = path_fmt(file, sizeof file, err, "%s/oci-layout", path);
  if (rc != FL_OK)
    return rc;
  if (stat(file, &st) != 0) {
    if (errno == ENOENT)
      return fl_error_set(err, FL_EINVALID,
                          "%s is not an OCI image layout (no oci-layout "
                          "file)",
                          path);
    return fl_fs_error(err, FL_OK, errno, "stat", file);
  }
  return FL_OK;
}

/* path without trailing slashes ("/" stays "/"). */
static char *clean_path(const char *path) {
  char *p = strdup(path);
  if (!p)
    return NULL;
  size_t n = strlen(p);
  while (n > 1 && p[n - 1] == '/')
    p[--n] = '\0';
  return p;
}

fl_code fl_oci_layout_open(const char *path, int create, fl_endpoint **out,
                           fl_error *err) {
  oci_ep *ep = NULL;
  fl_code rc;
  *out = NULL;
  if (!path || !*path)
    return fl_error_set(err, FL_EINVALID, "empty OCI layout path");
  if (strlen(path) > PATH_MAX - 200)
    return fl_error_set(err, FL_EINVALID, "OCI layout path too long: %.200s",
                        path);
  if (!(ep = calloc(1, sizeof *ep)))
    return fl_error_set(err, FL_ENOMEM, "out of memory opening %s", path);
  ep->base.ops = &oci_ops;
  ep->path = clean_path(path);
  size_t dlen = ep->path ? strlen(ep->path) + 5 : 0;
  ep->desc = ep->path ? malloc(dlen) : NULL;
  if (!ep->desc) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory opening %s", path);
    goto fail;
  }
  snprintf(ep->desc, dlen, "oci:%s", ep->path);
  rc = create ? create_layout(ep->path, err) : check_layout(ep->path, err);
  if (rc != FL_OK)
    goto fail;
  if (pthread_mutex_init(&ep->lock, NULL) != 0) {
    rc = fl_error_set(err, FL_ENOMEM, "cannot create a mutex for %s", path);
    goto fail;
  }
  *out = &ep->base;
  return FL_OK;
fail:
  free(ep->path);
  free(ep->desc);
  free(ep);
  return rc;
}
