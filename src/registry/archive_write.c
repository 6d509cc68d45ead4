/*
 * archive_write.c - writing oci-archive and docker-archive files (see
 * archive.h): copies go into a working OCI layout (FILE.parts), and
 * fl_archive_finish streams it into the archive file, atomically.
 */
#define _GNU_SOURCE /* mkostemp */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "registry/archive.h"
#include "registry/manifest.h"
#include "registry/oci_layout.h"
#include "registry/tar.h"

#define CHUNK (256 * 1024)
#define CONFIG_MAX (16 * 1024 * 1024)
#define REPOTAGS "repotags.json"

typedef struct ar_write {
  fl_endpoint base;
  fl_endpoint *inner; /* the working layout */
  fl_archive_kind kind;
  char *path;
  char *parts;
  char *desc;
  pthread_mutex_t lock; /* guards repotags and its file */
  json_t *repotags;     /* docker: layout tag -> "repo:tag" */
} ar_write;

static ar_write *as_write(fl_endpoint *e) { return (ar_write *)e; }

/* ---- delegation to the working layout ------------------------------------ */

#define INNER(e) (as_write(e)->inner)

static fl_code w_ping(fl_endpoint *e, fl_error *err) {
  return INNER(e)->ops->ping(INNER(e), err);
}
static fl_code w_catalog(fl_endpoint *e, size_t max, fl_strlist *out,
                         fl_error *err) {
  return INNER(e)->ops->catalog(INNER(e), max, out, err);
}
static fl_code w_tags(fl_endpoint *e, const char *repo, fl_strlist *out,
                      fl_error *err) {
  return INNER(e)->ops->tags(INNER(e), repo, out, err);
}
static fl_code w_manifest_get(fl_endpoint *e, const char *repo, const char *ref,
                              fl_manifest *out, fl_error *err) {
  return INNER(e)->ops->manifest_get(INNER(e), repo, ref, out, err);
}
static fl_code w_manifest_head(fl_endpoint *e, const char *repo,
                               const char *ref, fl_descriptor *out,
                               fl_error *err) {
  return INNER(e)->ops->manifest_head(INNER(e), repo, ref, out, err);
}
static fl_code w_manifest_delete(fl_endpoint *e, const char *repo,
                                 const char *ref, fl_error *err) {
  return INNER(e)->ops->manifest_delete(INNER(e), repo, ref, err);
}
static fl_code w_blob_exists(fl_endpoint *e, const char *repo,
                             const char *digest, uint64_t *size,
                             fl_error *err) {
  return INNER(e)->ops->blob_exists(INNER(e), repo, digest, size, err);
}
static fl_code w_blob_get(fl_endpoint *e, const char *repo, const char *digest,
                          uint64_t offset, fl_sink *sink, fl_error *err) {
  return INNER(e)->ops->blob_get(INNER(e), repo, digest, offset, sink, err);
}
static fl_code w_blob_put(fl_endpoint *e, const char *repo, const char *digest,
                          uint64_t size, fl_source *src, fl_error *err) {
  return INNER(e)->ops->blob_put(INNER(e), repo, digest, size, src, err);
}
static fl_code w_blob_mount(fl_endpoint *e, const char *repo, const char *from,
                            const char *digest, fl_error *err) {
  return INNER(e)->ops->blob_mount(INNER(e), repo, from, digest, err);
}
static fl_code w_blob_delete(fl_endpoint *e, const char *repo,
                             const char *digest, fl_error *err) {
  return INNER(e)->ops->blob_delete(INNER(e), repo, digest, err);
}
static fl_code w_referrers(fl_endpoint *e, const char *repo, const char *digest,
                           const char *type, fl_manifest *out, fl_error *err) {
  return INNER(e)->ops->referrers(INNER(e), repo, digest, type, out, err);
}

static int is_sig_tag(const char *t) { return strncmp(t, "sha256-", 7) == 0; }

/* docker-archive: remember which repository a tag was written for, in the
 * working directory too, so that a resumed run still knows it. */
static fl_code record_repotag(ar_write *ep, const char *repo, const char *tag,
                              fl_error *err) {
  char value[600], file[PATH_MAX], tmp[PATH_MAX + 8];
  snprintf(value, sizeof value, "%s%s%s", repo, repo[0] ? ":" : "", tag);
  snprintf(file, sizeof file, "%s/" REPOTAGS, ep->parts);
  snprintf(tmp, sizeof tmp, "%s.tmp", file);
  pthread_mutex_lock(&ep->lock);
  json_object_set_new(ep->repotags, tag, json_string(value));
  fl_code rc = FL_OK;
  if (json_dump_file(ep->repotags, tmp, JSON_COMPACT) != 0 ||
      rename(tmp, file) != 0)
    rc =
        fl_error_set(err, FL_EIO, "cannot write %s: %s", file, strerror(errno));
  pthread_mutex_unlock(&ep->lock);
  return rc;
}

static fl_code w_manifest_put(fl_endpoint *e, const char *repo, const char *ref,
                              const void *data, size_t len,
                              const char *media_type, fl_error *err) {
  ar_write *ep = as_write(e);
  if (ep->kind == FL_ARCHIVE_DOCKER && fl_media_type_is_index(media_type)) {
    json_t *root = json_loadb(data, len, 0, NULL);
    size_t n = json_array_size(json_object_get(root, "manifests"));
    json_decref(root);
    if (n != 1)
      return fl_error_set(err, FL_EUNSUPPORTED,
                          "%s holds single-platform images; %s:%s is an index "
                          "of %zu platforms: choose one (--platform OS/ARCH, "
                          "or the platforms copy option)",
                          ep->desc, repo, ref, n);
  }
  fl_code rc = ep->inner->ops->manifest_put(ep->inner, repo, ref, data, len,
                                            media_type, err);
  if (rc == FL_OK && ep->kind == FL_ARCHIVE_DOCKER && repo[0] && ref[0] &&
      !strchr(ref, ':') && !is_sig_tag(ref))
    rc = record_repotag(ep, repo, ref, err);
  return rc;
}

static const char *w_describe(fl_endpoint *e) { return as_write(e)->desc; }

static void w_free(fl_endpoint *e) {
  ar_write *ep = as_write(e);
  fl_endpoint_free(ep->inner);
  json_decref(ep->repotags);
  pthread_mutex_destroy(&ep->lock);
  free(ep->path);
  free(ep->parts);
  free(ep->desc);
  free(ep);
}

static const fl_endpoint_ops write_ops = {
    .kind = "archive",
    .ping = w_ping,
    .catalog = w_catalog,
    .tags = w_tags,
    .manifest_get = w_manifest_get,
    .manifest_head = w_manifest_head,
    .manifest_put = w_manifest_put,
    .manifest_delete = w_manifest_delete,
    .blob_exists = w_blob_exists,
    .blob_get = w_blob_get,
    .blob_put = w_blob_put,
    .blob_mount = w_blob_mount,
    .blob_delete = w_blob_delete,
    .referrers = w_referrers,
    .describe = w_describe,
    .free = w_free,
};

fl_code fl_archive_open_writer(fl_archive_kind kind, const char *path,
                               fl_endpoint **out, fl_error *err) {
  *out = NULL;
  ar_write *ep = calloc(1, sizeof *ep);
  if (!ep)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  ep->base.ops = &write_ops;
  ep->kind = kind;
  pthread_mutex_init(&ep->lock, NULL);
  const char *scheme =
      kind == FL_ARCHIVE_OCI ? "oci-archive" : "docker-archive";
  size_t plen = strlen(path) + 8, dlen = strlen(scheme) + strlen(path) + 2;
  ep->path = strdup(path);
  ep->parts = malloc(plen);
  ep->desc = malloc(dlen);
  fl_code rc = FL_OK;
  if (!ep->path || !ep->parts || !ep->desc) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
    goto out;
  }
  snprintf(ep->parts, plen, "%s.parts", path);
  snprintf(ep->desc, dlen, "%s:%s", scheme, path);
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    rc = fl_error_set(err, FL_EINVALID, "%s is a directory, not an archive",
                      path);
    goto out;
  }
  if ((rc = fl_oci_layout_open(ep->parts, 1, &ep->inner, err)) != FL_OK) {
    fl_error_prefix(err, "%s: working directory: ", ep->desc);
    goto out;
  }
  char file[PATH_MAX];
  snprintf(file, sizeof file, "%s/" REPOTAGS, ep->parts);
  ep->repotags = json_load_file(file, 0, NULL);
  if (!json_is_object(ep->repotags)) {
    json_decref(ep->repotags);
    ep->repotags = json_object();
  }
out:
  if (rc != FL_OK)
    w_free(&ep->base);
  else
    *out = &ep->base;
  return rc;
}

/* ---- finishing: the tar ---------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *st, int type,
                    struct FTW *ftw) {
  (void)st, (void)type, (void)ftw;
  return remove(p);
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir that are a digest's hex (no temp files), sorted. */
static fl_code hex_names(const char *dir, char ***names, size_t *n,
                         fl_error *err) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? FL_OK
                           : fl_error_set(err, FL_EIO, "cannot read %s: %s",
                                          dir, strerror(errno));
  struct dirent *de;
  size_t cap = 0;
  fl_code rc = FL_OK;
  /* the stream is this call's own: readdir is safe here */
  // cppcheck-suppress readdirCalled
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len < 64 || strspn(de->d_name, "0123456789abcdef") != len)
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(*names, cap * sizeof *nn);
      if (!nn) {
        rc = fl_error_set(err, FL_ENOMEM, "out of memory");
        break;
      }
      *names = nn;
    }
    if (!((*names)[(*n)++] = strdup(de->d_name))) {
      (*n)--;
      rc = fl_error_set(err, FL_ENOMEM, "out of memory");
      break;
    }
  }
  closedir(d);
  if (*n)
    qsort(*names, *n, sizeof **names, cmp_name);
  return rc;
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* The whole working layout, as skopeo lays out an oci-archive. */
static fl_code write_oci(ar_write *ep, fl_tar_writer *w, fl_error *err) {
  char p[PATH_MAX];
  static const char *const algs[] = {"sha256", "sha512"};
  snprintf(p, sizeof p, "%s/oci-layout", ep->parts);
  fl_code rc = fl_tar_add_file(w, "oci-layout", p, err);
  if (rc == FL_OK) {
    snprintf(p, sizeof p, "%s/index.json", ep->parts);
    rc = fl_tar_add_file(w, "index.json", p, err);
  }
  snprintf(p, sizeof p, "%s/" FL_ARCHIVE_CONTENTS, ep->parts);
  if (rc == FL_OK && access(p, F_OK) == 0)
    rc = fl_tar_add_file(w, FL_ARCHIVE_CONTENTS, p, err);
  if (rc == FL_OK)
    rc = fl_tar_add_dir(w, "blobs", err);
  for (size_t a = 0; a < 2 && rc == FL_OK; a++) {
    char dir[PATH_MAX / 2], **names;
    size_t n;
    snprintf(dir, sizeof dir, "%s/blobs/%s", ep->parts, algs[a]);
    if ((rc = hex_names(dir, &names, &n, err)) != FL_OK || n == 0) {
      free_names(names, n);
      continue;
    }
    snprintf(p, sizeof p, "blobs/%s", algs[a]);
    rc = fl_tar_add_dir(w, p, err);
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
      char member[128], file[PATH_MAX];
      snprintf(member, sizeof member, "blobs/%s/%s", algs[a], names[i]);
      snprintf(file, sizeof file, "%s/%s", dir, names[i]);
      rc = fl_tar_add_file(w, member, file, err);
    }
    free_names(names, n);
  }
  return rc;
}

/* ---- finishing: docker-archive -------------------------------------------- */

static fl_code blob_file(const ar_write *ep, const char *digest, char *out,
                         size_t cap, fl_error *err) {
  if (fl_digest_parse(digest, NULL, err) != FL_OK)
    return FL_EINVALID;
  snprintf(out, cap, "%s/blobs/%s", ep->parts, digest);
  *strrchr(out, ':') = '/';
  return FL_OK;
}

/* A gzip layer, decompressed into the member being written, hashed; the
 * result must be the config's diff ID. */
static fl_code inflate_layer(const char *file, fl_tar_writer *w,
                             char got[FL_DIGEST_STR_MAX], fl_error *err) {
  FILE *f = fopen(file, "rb");
  if (!f)
    return fl_error_set(err, FL_EIO, "cannot open %s: %s", file,
                        strerror(errno));
  unsigned char *in = malloc(CHUNK), *outb = malloc(CHUNK);
  fl_hasher *h = fl_hasher_new(FL_SHA256);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  fl_code rc = FL_OK;
  if (!in || !outb || !h || inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) {
    rc = fl_error_set(err, FL_ENOMEM, "out of memory");
    goto out;
  }
  int zrc = Z_OK;
  for (;;) {
    if (zs.avail_in == 0) {
      size_t n = fread(in, 1, CHUNK, f);
      if (n == 0)
        break;
      zs.next_in = in;
      zs.avail_in = (uInt)n;
    }
    zs.next_out = outb;
    zs.avail_out = CHUNK;
    zrc = inflate(&zs, Z_NO_FLUSH);
    if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) {
      rc = fl_error_set(err, FL_EINVALID, "%s: bad gzip data (%s)", file,
                        zs.msg ? zs.msg : "inflate failed");
      goto out;
    }
    size_t produced = CHUNK - zs.avail_out;
    if (produced && ((rc = fl_hasher_update(h, outb, produced)) != FL_OK ||
                     (rc = fl_tar_write(w, outb, produced, err)) != FL_OK))
      goto out;
    if (zrc == Z_STREAM_END)
      inflateReset(&zs); /* concatenated gzip members */
  }
  if (ferror(f))
    rc = fl_error_set(err, FL_EIO, "reading %s", file);
  else
    rc = fl_hasher_final(h, got);
out:
  inflateEnd(&zs);
  fl_hasher_free(h);
  free(in);
  free(outb);
  fclose(f);
  return rc;
}

static fl_code write_layer(ar_write *ep, fl_tar_writer *w, json_t *layer,
                           const char *diff_id, json_t *written, json_t *names,
                           fl_error *err) {
  const char *digest = json_string_value(json_object_get(layer, "digest"));
  const char *mt = json_string_value(json_object_get(layer, "mediaType"));
  char file[PATH_MAX], member[160];
  if (!digest || !mt || !diff_id ||
      fl_digest_parse(diff_id, NULL, NULL) != FL_OK)
    return fl_error_set(err, FL_EINVALID,
                        "%s: a layer without digest, media type or diff ID",
                        ep->desc);
  snprintf(member, sizeof member, "%s.tar", strchr(diff_id, ':') + 1);
  json_array_append_new(names, json_string(member));
  if (json_object_get(written, member))
    return FL_OK; /* shared with an image written before */
  fl_code rc = blob_file(ep, digest, file, sizeof file, err);
  if (rc != FL_OK)
    return rc;
  size_t mlen = strlen(mt);
  int gzip = mlen >= 4 && strcmp(mt + mlen - 4, "gzip") == 0;
  int plain = mlen >= 3 && strcmp(mt + mlen - 3, "tar") == 0;
  if (plain) {
    if (strcmp(digest, diff_id) != 0)
      return fl_error_set(err, FL_EDIGEST_MISMATCH,
                          "layer %s is not the diff ID %s its config names",
                          digest, diff_id);
    rc = fl_tar_add_file(w, member, file, err);
  } else if (gzip) {
    uint64_t at;
    char got[FL_DIGEST_STR_MAX];
    rc = fl_tar_open_member(w, member, &at, err);
    if (rc == FL_OK)
      rc = inflate_layer(file, w, got, err);
    if (rc == FL_OK && strcmp(got, diff_id) != 0)
      rc = fl_error_set(err, FL_EDIGEST_MISMATCH,
                        "layer %s decompresses to %s, not the diff ID %s its "
                        "config names",
                        digest, got, diff_id);
    if (rc == FL_OK)
      rc = fl_tar_close_member(w, member, at, err);
  } else {
    return fl_error_set(err, FL_EUNSUPPORTED,
                        "%s: layer %s is %s; a docker-archive takes tar or "
                        "gzip layers",
                        ep->desc, digest, mt);
  }
  if (rc == FL_OK)
    json_object_set_new(written, member, json_true());
  return rc;
}

/* One tagged image: its config and layers, and its manifest.json entry. */
static fl_code write_docker_image(ar_write *ep, fl_tar_writer *w,
                                  const char *tag, const char *repotag,
                                  json_t *written, json_t *list,
                                  fl_error *err) {
  fl_manifest m;
  json_t *root = NULL, *config = NULL, *names = json_array();
  char *cdata = NULL;
  fl_code rc = ep->inner->ops->manifest_get(ep->inner, "", tag, &m, err);
  if (rc != FL_OK)
    goto out;
  root = json_loadb(m.data, m.len, 0, NULL);
  if (fl_media_type_is_index(m.media_type)) {
    const char *child = json_string_value(json_object_get(
        json_array_get(json_object_get(root, "manifests"), 0), "digest"));
    char digest[FL_DIGEST_STR_MAX];
    snprintf(digest, sizeof digest, "%s", child ? child : "");
    fl_manifest_clear(&m);
    json_decref(root);
    root = NULL;
    if (!digest[0]) {
      rc = fl_error_set(err, FL_EINVALID, "%s: empty index %s", ep->desc, tag);
      goto out;
    }
    if ((rc = ep->inner->ops->manifest_get(ep->inner, "", digest, &m, err)) !=
        FL_OK)
      goto out;
    root = json_loadb(m.data, m.len, 0, NULL);
  }
  const char *cdigest = json_string_value(
      json_object_get(json_object_get(root, "config"), "digest"));
  char file[PATH_MAX], member[160];
  if (!cdigest ||
      (rc = blob_file(ep, cdigest, file, sizeof file, err)) != FL_OK) {
    rc = rc ? rc
            : fl_error_set(err, FL_EINVALID, "%s: %s has no config", ep->desc,
                           tag);
    goto out;
  }
  config = json_load_file(file, 0, NULL);
  json_t *diff_ids =
      json_object_get(json_object_get(config, "rootfs"), "diff_ids");
  json_t *layers = json_object_get(root, "layers");
  if (json_array_size(diff_ids) != json_array_size(layers)) {
    rc = fl_error_set(err, FL_EINVALID,
                      "%s: %s: the config lists %zu diff IDs for %zu layers",
                      ep->desc, tag, json_array_size(diff_ids),
                      json_array_size(layers));
    goto out;
  }
  snprintf(member, sizeof member, "%s.json", strchr(cdigest, ':') + 1);
  if (!json_object_get(written, member)) {
    if ((rc = fl_tar_add_file(w, member, file, err)) != FL_OK)
      goto out;
    json_object_set_new(written, member, json_true());
  }
  size_t i;
  json_t *layer;
  json_array_foreach(layers, i, layer) {
    rc = write_layer(ep, w, layer,
                     json_string_value(json_array_get(diff_ids, i)), written,
                     names, err);
    if (rc != FL_OK)
      goto out;
  }
  json_t *tags = json_array();
  if (repotag)
    json_array_append_new(tags, json_string(repotag));
  json_array_append_new(list, json_pack("{s:s,s:o,s:O}", "Config", member,
                                        "RepoTags", tags, "Layers", names));
out:
  json_decref(names);
  json_decref(config);
  json_decref(root);
  free(cdata);
  fl_manifest_clear(&m);
  return rc;
}

static fl_code write_docker(ar_write *ep, fl_tar_writer *w, json_t *index,
                            fl_error *err) {
  json_t *written = json_object(), *list = json_array();
  fl_code rc = FL_OK;
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(index, "manifests"), i, d) {
    const char *tag = json_string_value(
        json_object_get(json_object_get(d, "annotations"), FL_OCI_REF_NAME));
    if (!tag || is_sig_tag(tag))
      continue;
    const char *repotag = json_string_value(json_object_get(ep->repotags, tag));
    if ((rc = write_docker_image(ep, w, tag, repotag, written, list, err)) !=
        FL_OK)
      break;
  }
  if (rc == FL_OK) {
    char *text = json_dumps(list, JSON_COMPACT);
    rc = text ? fl_tar_add_bytes(w, "manifest.json", text, strlen(text), err)
              : fl_error_set(err, FL_ENOMEM, "out of memory");
    free(text);
  }
  json_decref(written);
  json_decref(list);
  return rc;
}

fl_code fl_archive_finish(fl_endpoint *e, fl_error *err) {
  if (!e || e->ops != &write_ops)
    return fl_error_set(err, FL_EINVALID, "not an archive opened for writing");
  ar_write *ep = as_write(e);
  char p[PATH_MAX], tmp[PATH_MAX];
  snprintf(p, sizeof p, "%s/index.json", ep->parts);
  json_t *index = json_load_file(p, 0, NULL);
  if (json_array_size(json_object_get(index, "manifests")) == 0) {
    json_decref(index);
    return fl_error_set(err, FL_ENOT_FOUND, "%s: nothing was written into it",
                        ep->desc);
  }
  snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", ep->path);
  fl_tar_writer w = {.fd = mkostemp(tmp, O_CLOEXEC), .path = tmp, .pos = 0};
  fl_code rc = FL_OK;
  if (w.fd < 0) {
    rc =
        fl_error_set(err, FL_EIO, "cannot create %s: %s", tmp, strerror(errno));
    json_decref(index);
    return rc;
  }
  fchmod(w.fd, 0644);
  rc = ep->kind == FL_ARCHIVE_OCI ? write_oci(ep, &w, err)
                                  : write_docker(ep, &w, index, err);
  json_decref(index);
  if (rc == FL_OK)
    rc = fl_tar_finish(&w, err);
  if (rc == FL_OK && fsync(w.fd) != 0)
    rc = fl_error_set(err, FL_EIO, "fsync %s: %s", tmp, strerror(errno));
  if (close(w.fd) != 0 && rc == FL_OK)
    rc = fl_error_set(err, FL_EIO, "closing %s: %s", tmp, strerror(errno));
  if (rc == FL_OK && rename(tmp, ep->path) != 0)
    rc = fl_error_set(err, FL_EIO, "cannot rename %s to %s: %s", tmp, ep->path,
                      strerror(errno));
  if (rc != FL_OK) {
    unlink(tmp);
    return rc;
  }
  /* the directory entry, then the working layout is no longer needed */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", ep->path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *(slash == dir ? slash + 1 : slash) = '\0';
  int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  nftw(ep->parts, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return FL_OK;
}

fl_code fl_archive_open(fl_archive_kind kind, const char *path, int write,
                        fl_endpoint **out, fl_error *err) {
  if (!path || !path[0])
    return fl_error_set(err, FL_EINVALID, "an archive needs a file name");
  return write ? fl_archive_open_writer(kind, path, out, err)
               : fl_archive_open_reader(kind, path, out, err);
}
