/*
 * archive_read.c - reading oci-archive and docker-archive files in place
 * (see archive.h): a member index, manifests and blobs read at their
 * offsets, docker-archive images served as Docker schema 2 manifests.
 */
#define _GNU_SOURCE /* pread, strndup */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "registry/archive.h"
#include "registry/manifest.h"
#include "registry/tar.h"

#define CHUNK (256 * 1024)
#define INDEX_MAX (64 * 1024 * 1024)
#define CONFIG_MAX (16 * 1024 * 1024)

typedef struct dk_blob {
  char digest[FL_DIGEST_STR_MAX];
  const fl_tar_member *m;
} dk_blob;

typedef struct dk_image {
  char *repo; /* "" when the archive names none */
  char *tag;  /* NULL when untagged */
  fl_manifest man;
} dk_image;

typedef struct ar_read {
  fl_endpoint base;
  fl_archive_kind kind;
  int fd;
  char *path;
  char *desc;
  fl_tar_index ix;
  pthread_mutex_t lock; /* guards the lazy load below */
  int loaded;
  fl_code load_rc;
  fl_error load_err;
  json_t *index;  /* oci: index.json */
  dk_image *imgs; /* docker: one per RepoTags entry */
  size_t nimgs;
  dk_blob *blobs; /* docker: config and layer members by digest */
  size_t nblobs;
} ar_read;

static ar_read *as_read(fl_endpoint *e) { return (ar_read *)e; }

/* ---- members -------------------------------------------------------------- */

static fl_code read_member(const ar_read *ep, const fl_tar_member *m,
                           size_t max, char **out, size_t *len, fl_error *err) {
  if (m->size > max)
    return fl_error_set(err, FL_ETOO_LARGE, "%s: member %s is over %zu bytes",
                        ep->path, m->name, max);
  char *buf = malloc((size_t)m->size + 1);
  if (!buf)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  size_t done = 0;
  while (done < m->size) {
    ssize_t n = pread(ep->fd, buf + done, (size_t)m->size - done,
                      (off_t)(m->offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      free(buf);
      return fl_error_set(err, FL_EIO, "reading %s: %s", ep->path,
                          n < 0 ? strerror(errno) : "unexpected end of file");
    }
    done += (size_t)n;
  }
  buf[done] = '\0';
  *out = buf;
  *len = done;
  return FL_OK;
}

static fl_code stream_member(const ar_read *ep, const fl_tar_member *m,
                             uint64_t offset, fl_sink *sink, fl_error *err) {
  char *buf = malloc(CHUNK);
  if (!buf)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  fl_code rc = FL_OK;
  for (uint64_t at = offset; at < m->size && rc == FL_OK;) {
    size_t want = m->size - at < CHUNK ? (size_t)(m->size - at) : CHUNK;
    ssize_t n = pread(ep->fd, buf, want, (off_t)(m->offset + at));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = fl_error_set(err, FL_EIO, "reading %s: %s", ep->path,
                        n < 0 ? strerror(errno) : "unexpected end of file");
      break;
    }
    rc = sink->write(sink->ud, buf, (size_t)n, err);
    at += (uint64_t)n;
  }
  free(buf);
  return rc;
}

typedef struct hash_sink {
  fl_hasher *h;
} hash_sink;

static fl_code hash_write(void *ud, const void *data, size_t len,
                          fl_error *err) {
  (void)err;
  return fl_hasher_update(((hash_sink *)ud)->h, data, len);
}

static fl_code digest_member(const ar_read *ep, const fl_tar_member *m,
                             char out[FL_DIGEST_STR_MAX], fl_error *err) {
  hash_sink hs = {fl_hasher_new(FL_SHA256)};
  if (!hs.h)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  fl_sink sink = {hash_write, &hs};
  fl_code rc = stream_member(ep, m, 0, &sink, err);
  if (rc == FL_OK)
    rc = fl_hasher_final(hs.h, out);
  fl_hasher_free(hs.h);
  return rc;
}

/* The member holding blob `digest`, or NULL. */
static const fl_tar_member *blob_member(const ar_read *ep, const char *digest) {
  if (fl_digest_parse(digest, NULL, NULL) != FL_OK)
    return NULL;
  if (ep->kind == FL_ARCHIVE_DOCKER) {
    for (size_t i = 0; i < ep->nblobs; i++)
      if (strcmp(ep->blobs[i].digest, digest) == 0)
        return ep->blobs[i].m;
    return NULL;
  }
  char name[FL_DIGEST_STR_MAX + 8];
  snprintf(name, sizeof name, "blobs/%s", digest);
  *strchr(name + 6, ':') = '/';
  return fl_tar_find(&ep->ix, name);
}

/* ---- loading -------------------------------------------------------------- */

static fl_code load_oci(ar_read *ep, fl_error *err) {
  const fl_tar_member *m = fl_tar_find(&ep->ix, "index.json");
  if (!m || !fl_tar_find(&ep->ix, "oci-layout"))
    return fl_error_set(err, FL_EINVALID,
                        "%s is not an oci-archive (no %s in it)", ep->path,
                        m ? "oci-layout" : "index.json");
  char *data;
  size_t len;
  fl_code rc = read_member(ep, m, INDEX_MAX, &data, &len, err);
  if (rc != FL_OK)
    return rc;
  json_error_t je;
  ep->index = json_loadb(data, len, 0, &je);
  free(data);
  if (!json_is_array(json_object_get(ep->index, "manifests")))
    return fl_error_set(err, FL_EINVALID,
                        "%s: index.json is not an image index (%s)", ep->path,
                        je.text[0] ? je.text : "no manifests list");
  return FL_OK;
}

static fl_code add_blob(ar_read *ep, const char *digest,
                        const fl_tar_member *m) {
  for (size_t i = 0; i < ep->nblobs; i++)
    if (strcmp(ep->blobs[i].digest, digest) == 0)
      return FL_OK;
  dk_blob *b = realloc(ep->blobs, (ep->nblobs + 1) * sizeof *b);
  if (!b)
    return FL_ENOMEM;
  ep->blobs = b;
  snprintf(b[ep->nblobs].digest, FL_DIGEST_STR_MAX, "%s", digest);
  b[ep->nblobs++].m = m;
  return FL_OK;
}

/* A member's digest: from a blobs/sha256/<hex> name (the engine verifies
 * every byte it reads anyway), else computed by streaming it. */
static fl_code member_digest(const ar_read *ep, const fl_tar_member *m,
                             char out[FL_DIGEST_STR_MAX], fl_error *err) {
  if (strncmp(m->name, "blobs/sha256/", 13) == 0 && strlen(m->name) == 77) {
    snprintf(out, FL_DIGEST_STR_MAX, "sha256:%s", m->name + 13);
    if (fl_digest_parse(out, NULL, NULL) == FL_OK)
      return FL_OK;
  }
  return digest_member(ep, m, out, err);
}

static const fl_tar_member *need_member(const ar_read *ep, const char *name,
                                        fl_error *err) {
  const fl_tar_member *m = name ? fl_tar_find(&ep->ix, name) : NULL;
  if (!m)
    fl_error_set(err, FL_EINVALID,
                 "%s: manifest.json names %s, which is not in the archive",
                 ep->path, name ? name : "(nothing)");
  return m;
}

/* One manifest.json entry as a Docker schema 2 manifest. */
static fl_code docker_manifest(ar_read *ep, json_t *entry, fl_manifest *out,
                               fl_error *err) {
  const fl_tar_member *cm =
      need_member(ep, json_string_value(json_object_get(entry, "Config")), err);
  if (!cm)
    return FL_EINVALID;
  char digest[FL_DIGEST_STR_MAX];
  fl_code rc =
      cm->size > CONFIG_MAX
          ? fl_error_set(err, FL_ETOO_LARGE, "%s: config too large", ep->path)
          : member_digest(ep, cm, digest, err);
  if (rc != FL_OK)
    return rc;
  if (add_blob(ep, digest, cm) != FL_OK)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  json_t *root = json_object();
  json_t *layers = json_array();
  json_object_set_new(root, "schemaVersion", json_integer(2));
  json_object_set_new(root, "mediaType", json_string(FL_MT_DOCKER_MANIFEST));
  json_object_set_new(root, "config",
                      json_pack("{s:s,s:I,s:s}", "mediaType",
                                FL_MT_DOCKER_CONFIG, "size",
                                (json_int_t)cm->size, "digest", digest));
  json_object_set_new(root, "layers", layers);
  size_t i;
  json_t *name;
  json_array_foreach(json_object_get(entry, "Layers"), i, name) {
    const fl_tar_member *lm = need_member(ep, json_string_value(name), err);
    if (!lm) {
      rc = FL_EINVALID;
      break;
    }
    if ((rc = member_digest(ep, lm, digest, err)) != FL_OK)
      break;
    /* skopeo labels every docker-archive layer tar.gzip, compressed or
     * not (clients detect compression by its magic); doing the same gives
     * the manifest skopeo gives, digest for digest. */
    const char *mt = FL_MT_DOCKER_LAYER_GZIP;
    json_array_append_new(layers,
                          json_pack("{s:s,s:I,s:s}", "mediaType", mt, "size",
                                    (json_int_t)lm->size, "digest", digest));
    if (add_blob(ep, digest, lm) != FL_OK) {
      rc = fl_error_set(err, FL_ENOMEM, "out of memory");
      break;
    }
  }
  if (rc == FL_OK) {
    memset(out, 0, sizeof *out);
    out->data = json_dumps(root, JSON_COMPACT);
    if (!out->data)
      rc = fl_error_set(err, FL_ENOMEM, "out of memory");
    else {
      out->len = strlen(out->data);
      rc = fl_manifest_check(out, FL_MT_DOCKER_MANIFEST, NULL, err);
    }
  }
  json_decref(root);
  return rc;
}

static fl_code add_image(ar_read *ep, const char *repotag,
                         const fl_manifest *man, fl_error *err) {
  if (!man->data)
    return fl_error_set(err, FL_EINVALID, "%s: an image without a manifest",
                        ep->path);
  dk_image *imgs = realloc(ep->imgs, (ep->nimgs + 1) * sizeof *imgs);
  if (!imgs)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  ep->imgs = imgs;
  dk_image *im = &imgs[ep->nimgs];
  memset(im, 0, sizeof *im);
  if (repotag) {
    /* "name:tag": the tag is after the last ':' that follows the last '/' */
    const char *slash = strrchr(repotag, '/');
    const char *colon = strrchr(slash ? slash : repotag, ':');
    size_t nlen = colon ? (size_t)(colon - repotag) : strlen(repotag);
    im->repo = strndup(repotag, nlen);
    im->tag = strdup(colon ? colon + 1 : "latest");
  } else {
    im->repo = strdup("");
  }
  im->man = *man;
  im->man.data = malloc(man->len + 1);
  if (!im->repo || (repotag && !im->tag) || !im->man.data) {
    free(im->repo);
    free(im->tag);
    free(im->man.data);
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  }
  memcpy(im->man.data, man->data, man->len + 1);
  ep->nimgs++;
  return FL_OK;
}

static fl_code load_docker(ar_read *ep, fl_error *err) {
  const fl_tar_member *m = fl_tar_find(&ep->ix, "manifest.json");
  if (!m)
    return fl_error_set(err, FL_EINVALID,
                        "%s is not a docker-archive (no manifest.json in it)",
                        ep->path);
  char *data;
  size_t len;
  fl_code rc = read_member(ep, m, INDEX_MAX, &data, &len, err);
  if (rc != FL_OK)
    return rc;
  json_t *list = json_loadb(data, len, 0, NULL);
  free(data);
  if (!json_is_array(list) || json_array_size(list) == 0) {
    json_decref(list);
    return fl_error_set(err, FL_EINVALID,
                        "%s: manifest.json is not a list of images", ep->path);
  }
  size_t i;
  json_t *entry;
  json_array_foreach(list, i, entry) {
    fl_manifest man;
    memset(&man, 0, sizeof man);
    if ((rc = docker_manifest(ep, entry, &man, err)) != FL_OK)
      break;
    json_t *tags = json_object_get(entry, "RepoTags");
    size_t j;
    json_t *t;
    if (json_array_size(tags) == 0)
      rc = add_image(ep, NULL, &man, err);
    json_array_foreach(tags, j, t) {
      if (rc == FL_OK && json_is_string(t))
        rc = add_image(ep, json_string_value(t), &man, err);
    }
    fl_manifest_clear(&man);
    if (rc != FL_OK)
      break;
  }
  json_decref(list);
  return rc;
}

/* Parse index.json / manifest.json on first use (docker-archive layers are
 * hashed then, once). */
static fl_code ensure_loaded(ar_read *ep, fl_error *err) {
  pthread_mutex_lock(&ep->lock);
  if (!ep->loaded) {
    fl_error_set(&ep->load_err, FL_OK, "%s", "");
    ep->load_rc = ep->kind == FL_ARCHIVE_OCI ? load_oci(ep, &ep->load_err)
                                             : load_docker(ep, &ep->load_err);
    ep->loaded = 1;
  }
  fl_code rc = ep->load_rc;
  if (rc != FL_OK && err)
    *err = ep->load_err;
  pthread_mutex_unlock(&ep->lock);
  return rc;
}

/* ---- finding an image ----------------------------------------------------- */

static int is_sig_tag(const char *t) {
  return t && strncmp(t, "sha256-", 7) == 0;
}

static void list_names(const ar_read *ep, char *out, size_t cap) {
  size_t used = 0;
  out[0] = '\0';
  if (ep->kind == FL_ARCHIVE_DOCKER) {
    for (size_t i = 0; i < ep->nimgs && used + 1 < cap; i++)
      used += (size_t)snprintf(out + used, cap - used, "%s%s:%s",
                               used ? ", " : "", ep->imgs[i].repo,
                               ep->imgs[i].tag ? ep->imgs[i].tag : "");
    return;
  }
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(ep->index, "manifests"), i, d) {
    const char *t = json_string_value(
        json_object_get(json_object_get(d, "annotations"), FL_OCI_REF_NAME));
    if (t && !is_sig_tag(t) && used + 1 < cap)
      used +=
          (size_t)snprintf(out + used, cap - used, "%s%s", used ? ", " : "", t);
  }
}

static fl_code ambiguous(const ar_read *ep, size_t n, fl_error *err) {
  char names[300];
  list_names(ep, names, sizeof names);
  return fl_error_set(err, n ? FL_EINVALID : FL_ENOT_FOUND,
                      "%s holds %zu images (%s); name one, as %s:NAME",
                      ep->path, n, names[0] ? names : "none tagged", ep->desc);
}

/* oci: the index.json descriptor for a tag, or "" for the only image. */
static fl_code oci_find(const ar_read *ep, const char *ref, json_t **out,
                        fl_error *err) {
  json_t *manifests = json_object_get(ep->index, "manifests");
  size_t i, n = 0;
  json_t *d, *found = NULL;
  json_array_foreach(manifests, i, d) {
    const char *t = json_string_value(
        json_object_get(json_object_get(d, "annotations"), FL_OCI_REF_NAME));
    /* without a tag: the one tagged image (signatures and referrers are
     * not images) */
    if (ref[0] ? (t && strcmp(t, ref) == 0) : (t && !is_sig_tag(t))) {
      found = d;
      n++;
    }
  }
  if (!ref[0] && n == 0 && json_array_size(manifests) == 1) {
    found = json_array_get(manifests, 0);
    n = 1;
  }
  if (!found)
    return ref[0] ? fl_error_set(err, FL_ENOT_FOUND, "%s: no image tagged %s",
                                 ep->desc, ref)
                  : ambiguous(ep, n, err);
  if (!ref[0] && n > 1)
    return ambiguous(ep, n, err);
  *out = found;
  return FL_OK;
}

/* "docker.io/library/app" and "app" name one repository. */
static const char *short_repo(const char *r) {
  if (strncmp(r, "docker.io/", 10) == 0)
    r += 10;
  if (strncmp(r, "library/", 8) == 0)
    r += 8;
  return r;
}

static const dk_image *docker_find(const ar_read *ep, const char *repo,
                                   const char *ref, fl_error *err) {
  const dk_image *found = NULL;
  size_t n = 0;
  if (!ref)
    ref = "";
  if (!repo)
    repo = "";
  for (size_t i = 0; ep->imgs && i < ep->nimgs; i++) {
    const dk_image *im = &ep->imgs[i];
    int match;
    if (strchr(ref, ':'))
      match = strcmp(im->man.digest, ref) == 0;
    else if (!ref[0])
      match = !found || strcmp(found->man.digest, im->man.digest) != 0;
    else
      match = im->tag && strcmp(im->tag, ref) == 0 &&
              (!repo[0] || strcmp(short_repo(im->repo), short_repo(repo)) == 0);
    if (match) {
      if (!found || strcmp(found->man.digest, im->man.digest) != 0)
        n++;
      found = found ? found : im;
    }
  }
  if (!found)
    fl_error_set(err, FL_ENOT_FOUND, "%s: no image %s%s%s", ep->desc, repo,
                 repo[0] ? ":" : "", ref);
  else if (n > 1) {
    ambiguous(ep, n, err);
    return NULL;
  }
  return found;
}

/* ---- endpoint operations ------------------------------------------------ */

static fl_code read_only(const ar_read *ep, fl_error *err) {
  return fl_error_set(err, FL_EUNSUPPORTED, "%s is opened for reading",
                      ep->desc);
}

static fl_code ar_ping(fl_endpoint *e, fl_error *err) {
  return ensure_loaded(as_read(e), err);
}

static fl_code ar_catalog(fl_endpoint *e, size_t max_items, fl_strlist *out,
                          fl_error *err) {
  (void)max_items;
  ar_read *ep = as_read(e);
  fl_code rc = ensure_loaded(ep, err);
  if (rc != FL_OK)
    return rc;
  if (ep->kind == FL_ARCHIVE_OCI)
    return fl_strlist_push(out, "image") == FL_OK
               ? FL_OK
               : fl_error_set(err, FL_ENOMEM, "out of memory");
  for (size_t i = 0; i < ep->nimgs; i++) {
    int seen = 0;
    for (size_t j = 0; j < out->count; j++)
      seen |= strcmp(out->items[j], ep->imgs[i].repo) == 0;
    if (!seen && fl_strlist_push(out, ep->imgs[i].repo) != FL_OK)
      return fl_error_set(err, FL_ENOMEM, "out of memory");
  }
  return FL_OK;
}

static fl_code ar_tags(fl_endpoint *e, const char *repo, fl_strlist *out,
                       fl_error *err) {
  ar_read *ep = as_read(e);
  fl_code rc = ensure_loaded(ep, err);
  if (rc != FL_OK)
    return rc;
  if (ep->kind == FL_ARCHIVE_DOCKER) {
    for (size_t i = 0; i < ep->nimgs && rc == FL_OK; i++)
      if (ep->imgs[i].tag &&
          (!repo[0] ||
           strcmp(short_repo(repo), short_repo(ep->imgs[i].repo)) == 0))
        rc = fl_strlist_push(out, ep->imgs[i].tag);
  } else {
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(ep->index, "manifests"), i, d) {
      const char *t = json_string_value(
          json_object_get(json_object_get(d, "annotations"), FL_OCI_REF_NAME));
      if (t && rc == FL_OK)
        rc = fl_strlist_push(out, t);
    }
  }
  return rc == FL_OK ? FL_OK : fl_error_set(err, FL_ENOMEM, "out of memory");
}

static fl_code ar_manifest_get(fl_endpoint *e, const char *repo,
                               const char *reference, fl_manifest *out,
                               fl_error *err) {
  ar_read *ep = as_read(e);
  memset(out, 0, sizeof *out);
  fl_code rc = ensure_loaded(ep, err);
  if (rc != FL_OK)
    return rc;
  if (ep->kind == FL_ARCHIVE_DOCKER) {
    const dk_image *im = docker_find(ep, repo, reference, err);
    if (!im)
      return err ? err->code : FL_ENOT_FOUND;
    *out = im->man;
    out->data = malloc(im->man.len + 1);
    if (!out->data)
      return fl_error_set(err, FL_ENOMEM, "out of memory");
    memcpy(out->data, im->man.data, im->man.len + 1);
    return FL_OK;
  }
  const char *digest = reference, *declared = NULL;
  if (!strchr(reference, ':')) {
    json_t *d = NULL;
    if ((rc = oci_find(ep, reference, &d, err)) != FL_OK)
      return rc;
    digest = json_string_value(json_object_get(d, "digest"));
    declared = json_string_value(json_object_get(d, "mediaType"));
  }
  const fl_tar_member *m = digest ? blob_member(ep, digest) : NULL;
  if (!m)
    return fl_error_set(err, FL_ENOT_FOUND, "%s: manifest %s not found",
                        ep->desc, digest ? digest : reference);
  if ((rc = read_member(ep, m, FL_MANIFEST_MAX, &out->data, &out->len, err)) !=
      FL_OK)
    return rc;
  rc = fl_manifest_check(out, declared, digest, err);
  if (rc != FL_OK)
    fl_manifest_clear(out);
  return rc;
}

static fl_code ar_manifest_head(fl_endpoint *e, const char *repo,
                                const char *reference, fl_descriptor *out,
                                fl_error *err) {
  fl_manifest m;
  fl_code rc = ar_manifest_get(e, repo, reference, &m, err);
  if (rc != FL_OK)
    return rc;
  snprintf(out->media_type, sizeof out->media_type, "%s", m.media_type);
  snprintf(out->digest, sizeof out->digest, "%s", m.digest);
  out->size = m.len;
  fl_manifest_clear(&m);
  return FL_OK;
}

static fl_code ar_manifest_put(fl_endpoint *e, const char *repo,
                               const char *reference, const void *data,
                               size_t len, const char *media_type,
                               fl_error *err) {
  (void)repo, (void)reference, (void)data, (void)len, (void)media_type;
  return read_only(as_read(e), err);
}

static fl_code ar_manifest_delete(fl_endpoint *e, const char *repo,
                                  const char *reference, fl_error *err) {
  (void)repo, (void)reference;
  return read_only(as_read(e), err);
}

static fl_code ar_blob_exists(fl_endpoint *e, const char *repo,
                              const char *digest, uint64_t *size,
                              fl_error *err) {
  (void)repo;
  ar_read *ep = as_read(e);
  fl_code rc = ensure_loaded(ep, err);
  if (rc != FL_OK)
    return rc;
  const fl_tar_member *m = blob_member(ep, digest);
  if (!m)
    return fl_error_set(err, FL_ENOT_FOUND, "%s: blob %s not found", ep->desc,
                        digest);
  if (size)
    *size = m->size;
  return FL_OK;
}

static fl_code ar_blob_get(fl_endpoint *e, const char *repo, const char *digest,
                           uint64_t offset, fl_sink *sink, fl_error *err) {
  (void)repo;
  ar_read *ep = as_read(e);
  fl_code rc = ensure_loaded(ep, err);
  if (rc != FL_OK)
    return rc;
  const fl_tar_member *m = blob_member(ep, digest);
  if (!m)
    return fl_error_set(err, FL_ENOT_FOUND, "%s: blob %s not found", ep->desc,
                        digest);
  return stream_member(ep, m, offset, sink, err);
}

static fl_code ar_blob_put(fl_endpoint *e, const char *repo, const char *digest,
                           uint64_t size, fl_source *src, fl_error *err) {
  (void)repo, (void)digest, (void)size, (void)src;
  return read_only(as_read(e), err);
}

static fl_code ar_blob_mount(fl_endpoint *e, const char *repo,
                             const char *from_repo, const char *digest,
                             fl_error *err) {
  (void)repo, (void)from_repo, (void)digest;
  return read_only(as_read(e), err);
}

static fl_code ar_blob_delete(fl_endpoint *e, const char *repo,
                              const char *digest, fl_error *err) {
  (void)repo, (void)digest;
  return read_only(as_read(e), err);
}

/* Referrers: manifests listed in index.json whose subject is `digest`. When
 * the archive has tags of cosign's tag scheme for the digest (or nothing
 * refers to it), FL_EUNSUPPORTED sends the caller to the tags, which carry
 * those. */
static fl_code ar_referrers(fl_endpoint *e, const char *repo,
                            const char *digest, const char *artifact_type,
                            fl_manifest *out, fl_error *err) {
  (void)repo;
  ar_read *ep = as_read(e);
  memset(out, 0, sizeof *out);
  fl_code rc = ensure_loaded(ep, err);
  if (rc != FL_OK)
    return rc;
  if (ep->kind == FL_ARCHIVE_DOCKER)
    return fl_error_set(err, FL_EUNSUPPORTED, "%s holds no referrers",
                        ep->desc);
  char prefix[FL_DIGEST_STR_MAX];
  snprintf(prefix, sizeof prefix, "%s", digest);
  char *colon = strchr(prefix, ':');
  if (colon)
    *colon = '-';
  json_t *list = json_array();
  size_t i;
  json_t *d;
  int tagged = 0;
  json_array_foreach(json_object_get(ep->index, "manifests"), i, d) {
    const char *t = json_string_value(
        json_object_get(json_object_get(d, "annotations"), FL_OCI_REF_NAME));
    if (t && strncmp(t, prefix, strlen(prefix)) == 0)
      tagged = 1;
    const char *md = json_string_value(json_object_get(d, "digest"));
    const fl_tar_member *m = md ? blob_member(ep, md) : NULL;
    char *data;
    size_t len;
    if (!m || m->size > FL_MANIFEST_MAX ||
        read_member(ep, m, FL_MANIFEST_MAX, &data, &len, NULL) != FL_OK)
      continue;
    json_t *man = json_loadb(data, len, 0, NULL);
    free(data);
    const char *subject = json_string_value(
        json_object_get(json_object_get(man, "subject"), "digest"));
    const char *at = json_string_value(json_object_get(man, "artifactType"));
    if (!at)
      at = json_string_value(
          json_object_get(json_object_get(man, "config"), "mediaType"));
    if (subject && strcmp(subject, digest) == 0 &&
        (!artifact_type || (at && strcmp(at, artifact_type) == 0))) {
      json_t *entry = json_pack("{s:O,s:s,s:I}", "mediaType",
                                json_object_get(man, "mediaType"), "digest", md,
                                "size", (json_int_t)m->size);
      if (at)
        json_object_set_new(entry, "artifactType", json_string(at));
      if (json_object_get(man, "annotations"))
        json_object_set(entry, "annotations",
                        json_object_get(man, "annotations"));
      json_array_append_new(list, entry);
    }
    json_decref(man);
  }
  if (tagged || json_array_size(list) == 0) {
    json_decref(list);
    return fl_error_set(err, FL_EUNSUPPORTED, "%s: referrers of %s are in tags",
                        ep->desc, digest);
  }
  json_t *idx = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType",
                          FL_MT_OCI_INDEX, "manifests", list);
  out->data = json_dumps(idx, JSON_COMPACT);
  json_decref(idx);
  if (!out->data)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  out->len = strlen(out->data);
  return fl_manifest_check(out, FL_MT_OCI_INDEX, NULL, err);
}

static const char *ar_describe(fl_endpoint *e) { return as_read(e)->desc; }

static void ar_free(fl_endpoint *e) {
  ar_read *ep = as_read(e);
  if (ep->fd >= 0)
    close(ep->fd);
  fl_tar_index_clear(&ep->ix);
  json_decref(ep->index);
  for (size_t i = 0; i < ep->nimgs; i++) {
    free(ep->imgs[i].repo);
    free(ep->imgs[i].tag);
    free(ep->imgs[i].man.data);
  }
  free(ep->imgs);
  free(ep->blobs);
  pthread_mutex_destroy(&ep->lock);
  free(ep->path);
  free(ep->desc);
  free(ep);
}

static const fl_endpoint_ops read_ops = {
    .kind = "archive",
    .ping = ar_ping,
    .catalog = ar_catalog,
    .tags = ar_tags,
    .manifest_get = ar_manifest_get,
    .manifest_head = ar_manifest_head,
    .manifest_put = ar_manifest_put,
    .manifest_delete = ar_manifest_delete,
    .blob_exists = ar_blob_exists,
    .blob_get = ar_blob_get,
    .blob_put = ar_blob_put,
    .blob_mount = ar_blob_mount,
    .blob_delete = ar_blob_delete,
    .referrers = ar_referrers,
    .describe = ar_describe,
    .free = ar_free,
};

fl_code fl_archive_open_reader(fl_archive_kind kind, const char *path,
                               fl_endpoint **out, fl_error *err) {
  *out = NULL;
  ar_read *ep = calloc(1, sizeof *ep);
  if (!ep)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  ep->base.ops = &read_ops;
  ep->kind = kind;
  ep->fd = -1;
  pthread_mutex_init(&ep->lock, NULL);
  const char *scheme =
      kind == FL_ARCHIVE_OCI ? "oci-archive" : "docker-archive";
  size_t dlen = strlen(scheme) + strlen(path) + 2;
  ep->path = strdup(path);
  ep->desc = malloc(dlen);
  fl_code rc = FL_OK;
  if (!ep->path || !ep->desc) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
    goto out;
  }
  snprintf(ep->desc, dlen, "%s:%s", scheme, path);
  ep->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (ep->fd < 0) {
    rc = fl_error_set(err, errno == ENOENT ? FL_ENOT_FOUND : FL_EIO,
                      "cannot open %s: %s", path, strerror(errno));
    goto out;
  }
  rc = fl_tar_index_read(ep->fd, path, &ep->ix, err);
  /* A docker-archive's layers are hashed on first use, not here. */
  if (rc == FL_OK && kind == FL_ARCHIVE_OCI)
    rc = ensure_loaded(ep, err);
  if (rc == FL_OK && kind == FL_ARCHIVE_DOCKER &&
      !fl_tar_find(&ep->ix, "manifest.json"))
    rc = fl_error_set(err, FL_EINVALID,
                      "%s is not a docker-archive (no manifest.json in it)",
                      path);
out:
  if (rc != FL_OK)
    ar_free(&ep->base);
  else
    *out = &ep->base;
  return rc;
}

fl_code fl_archive_read_member(fl_endpoint *e, const char *name, size_t max,
                               char **out, size_t *len, fl_error *err) {
  *out = NULL;
  *len = 0;
  if (!e || e->ops != &read_ops)
    return fl_error_set(err, FL_EINVALID, "not an archive opened for reading");
  ar_read *ep = as_read(e);
  const fl_tar_member *m = fl_tar_find(&ep->ix, name);
  if (!m)
    return fl_error_set(err, FL_ENOT_FOUND, "%s has no member %s", ep->desc,
                        name);
  return read_member(ep, m, max, out, len, err);
}
