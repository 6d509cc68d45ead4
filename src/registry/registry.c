/*
 * registry.c - the OCI Distribution API as an endpoint (see registry.h).
 *
 * Each operation validates its inputs before they go into a URL, sends one
 * logical request through fl_http_do (which owns auth, retries and limits)
 * and turns the answer into an fl_code with a message naming the repository
 * and what failed.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/jsonmem.h"
#include "core/log.h"
#include "registry/manifest.h"
#include "registry/reference.h"
#include "registry/registry.h"

#define URL_MAX 4096

static const char *const accept_manifests[] = {
    "Accept: " FL_MT_OCI_MANIFEST ", " FL_MT_OCI_INDEX
    ", " FL_MT_DOCKER_MANIFEST ", " FL_MT_DOCKER_LIST
    ", " FL_MT_DOCKER_SCHEMA1_SIGNED ";q=0.1",
    NULL};

typedef struct registry {
  fl_endpoint base;
  fl_http *http;
  uint64_t chunk_size;
  uint64_t resume_chunk_size;
  atomic_int chunks_refused;     /* the registry turned a chunked upload down */
  atomic_int self_mount_refused; /* ... or a mount query (open_session) */
  size_t page_size;
  size_t max_list_pages, max_list_entries;
  char describe[300];
} registry;

static registry *as_registry(fl_endpoint *ep) { return (registry *)ep; }

/* ---- the shape of one operation ----------------------------------------- */

/* The grammar is reference.c's; these only name it for the operations. */
static fl_code check_repo(const char *repo, fl_error *err) {
  return fl_ref_check_repository(repo, err);
}

static int is_digest(const char *ref) { return strchr(ref, ':') != NULL; }

/* What a manifest or blob operation works on. */
typedef enum object_kind {
  OBJ_MANIFEST, /* /v2/<repo>/manifests/<tag or digest> */
  OBJ_BLOB      /* /v2/<repo>/blobs/<digest> */
} object_kind;

/* One manifest or blob operation: its URL and the words that name it in
 * messages ("getting manifest team/app:v1"). */
typedef struct reg_op {
  char url[URL_MAX];
  char what[700];
} reg_op;

/* The prologue every manifest and blob operation shares: check the
 * repository and the reference (a tag or a digest for a manifest, a digest
 * for a blob) before either goes into a URL, then build the URL and the
 * description (what_fmt and its arguments). */
__attribute__((format(printf, 6, 7))) static fl_code
prepare(reg_op *op, object_kind kind, const char *repo, const char *ref,
        fl_error *err, const char *what_fmt, ...) {
  va_list ap;
  fl_code rc = check_repo(repo, err);
  if (rc == FL_OK)
    rc = kind == OBJ_MANIFEST ? fl_ref_check_reference(ref, NULL, err)
                              : fl_ref_check_digest(ref, NULL, err);
  if (rc != FL_OK)
    return rc;
  snprintf(op->url, sizeof op->url, "/v2/%s/%s/%s", repo,
           kind == OBJ_MANIFEST ? "manifests" : "blobs", ref);
  va_start(ap, what_fmt);
  vsnprintf(op->what, sizeof op->what, what_fmt, ap);
  va_end(ap);
  return FL_OK;
}

/* Send req; a final status other than ok or ok2 becomes the error that
 * fl_http_status_error makes of it. resp is filled either way: clear it. */
static fl_code send_op(registry *r, const fl_http_request *req,
                       const reg_op *op, long ok, long ok2,
                       fl_http_response *resp, fl_error *err) {
  fl_code rc = fl_http_do(r->http, req, resp, err);
  if (rc == FL_OK && resp->status != ok && resp->status != ok2)
    rc = fl_http_status_error(r->http, resp, op->what, err);
  return rc;
}

/* ---- ping, catalog, tags ------------------------------------------------- */

static fl_code reg_ping(fl_endpoint *ep, fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  fl_http_request req = {.method = "GET", .url = "/v2/"};
  fl_code rc = fl_http_do(r->http, &req, &resp, err);
  if (rc == FL_OK && resp.status != 200)
    rc = fl_http_status_error(r->http, &resp, "ping", err);
  fl_http_response_clear(&resp);
  return rc;
}

/* FNV-1a of a URL: the pages a listing has read, to see a loop at once. */
static uint64_t url_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* One page of a listing: the strings of array `key` appended to out, at
 * most r->max_list_entries in all. */
static fl_code list_page(registry *r, const fl_http_response *resp,
                         const char *key, size_t max_items, fl_strlist *out,
                         const char *what, fl_error *err) {
  json_error_t jerr;
  int oom;
  json_t *root =
      fl_json_loadb(resp->body ? resp->body : "", resp->body_len, &jerr, &oom);
  json_t *arr = json_object_get(root, key);
  fl_code rc = FL_OK;
  if (!json_is_object(root) ||
      (arr && !json_is_array(arr) && !json_is_null(arr))) {
    if (oom)
      rc = fl_error_set(err, FL_ENOMEM,
                        "%s: out of memory reading the answer of %s", what,
                        fl_http_host(r->http));
    else
      rc = fl_error_set(
          err, FL_EPROTOCOL, "%s: %s answered with malformed JSON (%s)", what,
          fl_http_host(r->http), root ? "unexpected shape" : jerr.text);
    goto out;
  }
  size_t i;
  json_t *item;
  json_array_foreach(arr, i, item) {
    const char *s = json_string_value(item);
    if (!s)
      continue;
    if (max_items && out->count >= max_items)
      break;
    if (out->count >= r->max_list_entries) {
      rc = fl_error_set(err, FL_ETOO_LARGE,
                        "%s: %s listed over %zu entries (max_list_entries)",
                        what, fl_http_host(r->http), r->max_list_entries);
      goto out;
    }
    if (fl_strlist_push(out, s) != FL_OK) {
      rc = fl_error_set(err, FL_ENOMEM, "%s: out of memory after %zu entries",
                        what, out->count);
      goto out;
    }
  }
out:
  json_decref(root);
  return rc;
}

/* Collect the strings of array `key` of each page, following Link: within
 * the registry's origin only, never to a page already read, for at most
 * max_list_pages pages and max_list_entries entries. */
static fl_code paged_list(registry *r, const char *first_url, const char *repo,
                          const char *extra_scope, const char *key,
                          size_t max_items, fl_strlist *out, const char *what,
                          fl_error *err) {
  char url[URL_MAX];
  fl_code rc = FL_OK;
  uint64_t *seen = NULL; /* url_hash of each page read */
  size_t pages = 0;
  snprintf(url, sizeof url, "%s", first_url);
  for (;;) {
    fl_http_response resp;
    fl_http_request req = {.method = "GET",
                           .url = url,
                           .repo = repo,
                           .actions = "pull",
                           .extra_scope = extra_scope,
                           .max_body = 16 * 1024 * 1024};
    rc = fl_http_do(r->http, &req, &resp, err);
    if (rc == FL_ETOO_LARGE)
      fl_error_prefix(err, "%s: page %zu: ", what, pages + 1);
    if (rc != FL_OK)
      goto out;
    /* the page's absolute URL (the base is settled after a request) */
    char current[URL_MAX];
    snprintf(current, sizeof current, "%s%s",
             strncmp(url, "http", 4) == 0 ? "" : fl_http_base(r->http), url);
    if (pages % 64 == 0) {
      uint64_t *more = realloc(seen, (pages + 64) * sizeof *seen);
      if (!more) {
        fl_http_response_clear(&resp);
        rc = fl_error_set(err, FL_ENOMEM, "%s: out of memory", what);
        goto out;
      }
      seen = more;
    }
    seen[pages++] = url_hash(current);
    if (resp.status != 200) {
      rc = fl_http_status_error(r->http, &resp, what, err);
      fl_http_response_clear(&resp);
      goto out;
    }
    rc = list_page(r, &resp, key, max_items, out, what, err);
    char next[URL_MAX];
    int more = rc == FL_OK && resp.link &&
               fl_http_link_next(resp.link, current, next, sizeof next);
    fl_http_response_clear(&resp);
    if (!more || (max_items && out->count >= max_items))
      goto out;
    /* pagination never leaves the registry (origin.h) */
    fl_origin_verdict v = fl_http_origin(r->http, next);
    if (v != FL_ORIGIN_SAME) {
      char o[FL_ORIGIN_MAX];
      if (!fl_origin_of(next, o, sizeof o))
        snprintf(o, sizeof o, "%s", "(unparsable)");
      rc = fl_error_set(err, FL_EPROTOCOL,
                        "%s: %s sent a next-page Link to %s (%s); "
                        "pagination never leaves the registry",
                        what, fl_http_host(r->http), o,
                        fl_origin_verdict_text(v));
      goto out;
    }
    /* ... never back to a page already read, and not forever */
    uint64_t hash = url_hash(next);
    for (size_t i = 0; i < pages; i++)
      if (seen[i] == hash) {
        rc = fl_error_set(err, FL_EPROTOCOL,
                          "%s: %s sent a next-page Link back to page %zu "
                          "(a pagination loop)",
                          what, fl_http_host(r->http), i + 1);
        goto out;
      }
    if (pages >= r->max_list_pages) {
      rc = fl_error_set(err, FL_ETOO_LARGE,
                        "%s: %s sent over %zu pages (max_list_pages)", what,
                        fl_http_host(r->http), r->max_list_pages);
      goto out;
    }
    snprintf(url, sizeof url, "%s", next);
  }
out:
  free(seen);
  return rc;
}

static fl_code reg_catalog(fl_endpoint *ep, size_t max_items, fl_strlist *out,
                           fl_error *err) {
  registry *r = as_registry(ep);
  char url[64];
  size_t n = r->page_size;
  if (max_items && max_items < n)
    n = max_items;
  snprintf(url, sizeof url, "/v2/_catalog?n=%zu", n);
  return paged_list(r, url, NULL, "registry:catalog:*", "repositories",
                    max_items, out, "listing the catalog", err);
}

static fl_code reg_tags(fl_endpoint *ep, const char *repo, fl_strlist *out,
                        fl_error *err) {
  registry *r = as_registry(ep);
  fl_code rc = check_repo(repo, err);
  if (rc != FL_OK)
    return rc;
  char url[URL_MAX], what[400];
  snprintf(url, sizeof url, "/v2/%s/tags/list?n=%zu", repo, r->page_size);
  snprintf(what, sizeof what, "listing tags of %s", repo);
  return paged_list(r, url, repo, NULL, "tags", 0, out, what, err);
}

/* ---- manifests ----------------------------------------------------------- */

/* Verify a fetched manifest against the digest asked for, else the one the
 * registry states; a stated digest of the same algorithm must match too. */
static fl_code check_fetched(fl_manifest *m, const char *ref,
                             const fl_http_response *resp, fl_error *err) {
  const char *stated = resp->docker_digest;
  if (stated && fl_digest_parse(stated, NULL, NULL) != FL_OK)
    stated = NULL;
  fl_code rc = fl_manifest_check(m, resp->content_type,
                                 is_digest(ref) ? ref : stated, err);
  if (rc == FL_OK && is_digest(ref) && stated &&
      strncmp(stated, m->digest, 7) == 0 && strcmp(stated, m->digest) != 0)
    rc = fl_error_set(err, FL_EDIGEST_MISMATCH,
                      "registry states Docker-Content-Digest %s but the "
                      "content hashes to %s",
                      stated, m->digest);
  return rc;
}

static fl_code reg_manifest_get(fl_endpoint *ep, const char *repo,
                                const char *ref, fl_manifest *out,
                                fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  reg_op op;
  memset(out, 0, sizeof *out);
  fl_code rc = prepare(&op, OBJ_MANIFEST, repo, ref, err,
                       "getting manifest %s:%s", repo, ref);
  if (rc != FL_OK)
    return rc;
  fl_http_request req = {.method = "GET",
                         .url = op.url,
                         .repo = repo,
                         .actions = "pull",
                         .headers = accept_manifests,
                         .max_body = FL_MANIFEST_MAX};
  rc = send_op(r, &req, &op, 200, 200, &resp, err);
  if (rc == FL_ETOO_LARGE)
    fl_error_prefix(err, "%s: ", op.what);
  if (rc != FL_OK)
    goto out;
  out->data = resp.body ? resp.body : calloc(1, 1);
  out->len = resp.body_len;
  resp.body = NULL;
  if (!out->data) {
    rc = fl_error_set(err, FL_ENOMEM, "%s: out of memory", op.what);
    goto out;
  }
  if ((rc = check_fetched(out, ref, &resp, err)) != FL_OK) {
    fl_error_prefix(err, "%s: ", op.what);
    fl_manifest_clear(out);
  }
out:
  fl_http_response_clear(&resp);
  return rc;
}

static void copy_field(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static fl_code reg_manifest_head(fl_endpoint *ep, const char *repo,
                                 const char *ref, fl_descriptor *out,
                                 fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  reg_op op;
  memset(out, 0, sizeof *out);
  fl_code rc = prepare(&op, OBJ_MANIFEST, repo, ref, err,
                       "checking manifest %s:%s", repo, ref);
  if (rc != FL_OK)
    return rc;
  fl_http_request req = {.method = "HEAD",
                         .url = op.url,
                         .repo = repo,
                         .actions = "pull",
                         .headers = accept_manifests};
  rc = send_op(r, &req, &op, 200, 200, &resp, err);
  if (rc == FL_OK && resp.docker_digest &&
      fl_digest_parse(resp.docker_digest, NULL, NULL) == FL_OK) {
    copy_field(out->digest, sizeof out->digest, resp.docker_digest);
    copy_field(out->media_type, sizeof out->media_type, resp.content_type);
    out->size = resp.content_length == UINT64_MAX ? 0 : resp.content_length;
  } else if (rc == FL_OK) {
    /* No digest header: fetch and hash the manifest itself. */
    fl_manifest m;
    rc = reg_manifest_get(ep, repo, ref, &m, err);
    if (rc == FL_OK) {
      copy_field(out->digest, sizeof out->digest, m.digest);
      copy_field(out->media_type, sizeof out->media_type, m.media_type);
      out->size = m.len;
      fl_manifest_clear(&m);
    }
  }
  fl_http_response_clear(&resp);
  return rc;
}

static fl_code reg_manifest_put(fl_endpoint *ep, const char *repo,
                                const char *ref, const void *data, size_t len,
                                const char *media_type, fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  reg_op op;
  char ctype[FL_MEDIA_TYPE_MAX + 16], digest[FL_DIGEST_STR_MAX];
  fl_code rc = prepare(&op, OBJ_MANIFEST, repo, ref, err,
                       "pushing manifest %s:%s", repo, ref);
  if (rc != FL_OK)
    return rc;
  if (len > FL_MANIFEST_MAX)
    return fl_error_set(err, FL_ETOO_LARGE,
                        "manifest for %s:%s is %zu bytes, "
                        "over the %d byte limit",
                        repo, ref, len, FL_MANIFEST_MAX);
  snprintf(ctype, sizeof ctype, "Content-Type: %s", media_type);
  const char *headers[] = {ctype, NULL};
  fl_http_request req = {.method = "PUT",
                         .url = op.url,
                         .repo = repo,
                         .actions = "pull,push",
                         .headers = headers,
                         .body = data,
                         .body_len = len};
  rc = send_op(r, &req, &op, 201, 200, &resp, err);
  if (rc == FL_OK && resp.docker_digest &&
      fl_digest_buffer(FL_SHA256, data, len, digest) == FL_OK &&
      strncmp(resp.docker_digest, "sha256:", 7) == 0 &&
      strcmp(resp.docker_digest, digest) != 0)
    rc = fl_error_set(err, FL_EDIGEST_MISMATCH,
                      "%s: the registry stored it as %s but it hashes to %s",
                      op.what, resp.docker_digest, digest);
  fl_http_response_clear(&resp);
  return rc;
}

/* DELETE op.url; 202 or 200 is done. The final status goes to *status. */
static fl_code delete_op(registry *r, const char *repo, const reg_op *op,
                         long *status, fl_error *err) {
  fl_http_response resp;
  fl_http_request req = {
      .method = "DELETE", .url = op->url, .repo = repo, .actions = "delete"};
  fl_code rc = send_op(r, &req, op, 202, 200, &resp, err);
  if (status)
    *status = resp.status;
  fl_http_response_clear(&resp);
  return rc;
}

static fl_code reg_manifest_delete(fl_endpoint *ep, const char *repo,
                                   const char *ref, fl_error *err) {
  registry *r = as_registry(ep);
  reg_op op;
  long status = 0;
  fl_code rc =
      prepare(&op, OBJ_MANIFEST, repo, ref, err, "deleting %s:%s", repo, ref);
  if (rc != FL_OK)
    return rc;
  rc = delete_op(r, repo, &op, &status, err);
  if (rc == FL_OK || is_digest(ref) || (status != 400 && status != 405))
    return rc;
  /* Registries without tag deletion (Distribution 2.x answer 400 or 405).
   * Deleting the manifest instead would remove every tag on it: that choice
   * is the caller's (registry.lua's reg:delete, prune.lua), not made here. */
  return fl_error_set(err, FL_EUNSUPPORTED,
                      "deleting %s:%s: the registry does not delete by tag "
                      "(HTTP %ld); delete the manifest by digest",
                      repo, ref, status);
}

/* ---- blobs --------------------------------------------------------------- */

static fl_code reg_blob_exists(fl_endpoint *ep, const char *repo,
                               const char *digest, uint64_t *size,
                               fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  reg_op op;
  fl_code rc = prepare(&op, OBJ_BLOB, repo, digest, err,
                       "checking blob %s in %s", digest, repo);
  if (rc != FL_OK)
    return rc;
  fl_http_request req = {.method = "HEAD",
                         .url = op.url,
                         .repo = repo,
                         .actions = "pull",
                         .follow_redirects = 1};
  rc = send_op(r, &req, &op, 200, 200, &resp, err);
  if (rc == FL_OK && size)
    *size = resp.content_length == UINT64_MAX ? 0 : resp.content_length;
  fl_http_response_clear(&resp);
  return rc;
}

/* A sink that drops the first `skip` bytes when the registry ignored the
 * Range header and answered 200 with the whole blob. */
typedef struct skip_sink {
  fl_sink *inner;
  uint64_t skip;
  const long *status;
  uint64_t delivered; /* bytes given to inner */
} skip_sink;

static fl_code skip_write(void *ud, const void *data, size_t len,
                          fl_error *err) {
  skip_sink *s = ud;
  if (*s->status != 200)
    s->skip = 0;
  if (s->skip >= len) {
    s->skip -= len;
    return FL_OK;
  }
  const char *p = (const char *)data + s->skip;
  len -= (size_t)s->skip;
  s->skip = 0;
  s->delivered += len;
  return s->inner->write(s->inner->ud, p, len, err);
}

static fl_code reg_blob_get(fl_endpoint *ep, const char *repo,
                            const char *digest, uint64_t offset, fl_sink *sink,
                            fl_error *err) {
  registry *r = as_registry(ep);
  reg_op op;
  char range[64];
  fl_code rc = prepare(&op, OBJ_BLOB, repo, digest, err,
                       "downloading blob %s from %s", digest, repo);
  if (rc != FL_OK)
    return rc;
  /* Resume after a dropped connection from the last byte received. */
  uint64_t at = offset;
  for (int resumes = 0;; resumes++) {
    fl_http_response resp;
    skip_sink skipper = {sink, at, &resp.status, 0};
    fl_sink wrapped = {skip_write, &skipper};
    snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)at);
    const char *headers[] = {range, NULL};
    fl_http_request req = {.method = "GET",
                           .url = op.url,
                           .repo = repo,
                           .actions = "pull",
                           .follow_redirects = 1,
                           .headers = at ? headers : NULL,
                           .sink = &wrapped,
                           .stream_no_retry = 1};
    rc = send_op(r, &req, &op, 200, 206, &resp, err);
    uint64_t got = skipper.delivered;
    fl_http_response_clear(&resp);
    at += got;
    int transport = rc == FL_EUNREACHABLE || rc == FL_ETIMEOUT;
    if (!(transport && got > 0 && resumes < 5))
      return rc;
    fl_http_count_retry();
    /* progress was made: resume from where it stopped */
  }
}

/* Cancel an upload session so the registry drops its partial data.
 * (Distribution 2.x may still be flushing an aborted PUT when the DELETE
 * arrives and write on afterwards; its upload purger removes such leftovers.
 * Nothing is ever committed from them.) */
static void cancel_upload(registry *r, const char *location, const char *repo) {
  fl_http_response resp;
  fl_error ignored;
  fl_http_request req = {.method = "DELETE",
                         .url = location,
                         .repo = repo,
                         .actions = "pull,push",
                         .cleanup = 1};
  if (fl_http_do(r->http, &req, &resp, &ignored) == FL_OK)
    fl_http_response_clear(&resp);
}

static fl_code start_upload(registry *r, const char *repo, const char *query,
                            const char *extra_scope, fl_http_response *resp,
                            const char *what, fl_error *err) {
  char url[URL_MAX];
  snprintf(url, sizeof url, "/v2/%s/blobs/uploads/%s", repo, query);
  fl_http_request req = {.method = "POST",
                         .url = url,
                         .repo = repo,
                         .actions = "pull,push",
                         .extra_scope = extra_scope};
  fl_code rc = fl_http_do(r->http, &req, resp, err);
  if (rc != FL_OK)
    return rc;
  if (resp->status != 202 && resp->status != 201)
    return fl_http_status_error(r->http, resp, what, err);
  if (resp->status == 202 && !resp->location)
    return fl_error_set(err, FL_EPROTOCOL,
                        "%s: registry started an upload without a Location",
                        what);
  return FL_OK;
}

static fl_code upload_url(registry *r, const char *location, char *abs,
                          const char *what, fl_error *err);

/* location + "?digest=" or "&digest=" */
static fl_code with_digest(registry *r, const char *location,
                           const char *digest, char *out, size_t n,
                           const char *what, fl_error *err) {
  char abs[URL_MAX];
  if (upload_url(r, location, abs, what, err) != FL_OK)
    return err->code;
  int w = snprintf(out, n, "%s%sdigest=%s", abs, strchr(abs, '?') ? "&" : "?",
                   digest);
  if (w < 0 || (size_t)w >= n)
    return fl_error_set(err, FL_EPROTOCOL, "%s: upload location too long",
                        what);
  return FL_OK;
}

/* A source limited to `left` bytes of another (one PATCH chunk). */
typedef struct chunk_source {
  fl_source *inner;
  uint64_t left;
  uint64_t given;    /* bytes handed to the HTTP layer */
  int source_failed; /* the inner source failed (not the registry) */
} chunk_source;

static long long chunk_read(void *ud, void *buf, size_t len, fl_error *err) {
  chunk_source *c = ud;
  if (c->left == 0)
    return 0;
  if (len > c->left)
    len = (size_t)c->left;
  long long n = c->inner->read(c->inner->ud, buf, len, err);
  if (n > 0) {
    c->left -= (uint64_t)n;
    c->given += (uint64_t)n;
  } else if (n < 0) {
    c->source_failed = 1;
  }
  return n;
}

/* The absolute URL of upload session `location` into abs (URL_MAX). The
 * origin rule (origin.h) applies: a Location on another origin gets the
 * blob but none of this registry's credentials (fl_http_do drops them);
 * plain HTTP from an HTTPS registry, or a non-http(s) URL, is refused. */
static fl_code upload_url(registry *r, const char *location, char *abs,
                          const char *what, fl_error *err) {
  if (fl_http_resolve_url(fl_http_base(r->http), location, abs, URL_MAX) !=
      FL_OK)
    return fl_error_set(err, FL_EPROTOCOL, "%s: bad upload location", what);
  fl_origin_verdict v = fl_http_origin(r->http, abs);
  if (v == FL_ORIGIN_DOWNGRADE || v == FL_ORIGIN_INVALID) {
    char o[FL_ORIGIN_MAX];
    if (!fl_origin_of(abs, o, sizeof o))
      snprintf(o, sizeof o, "%s", "(unparsable)");
    return fl_error_set(err, FL_EPROTOCOL,
                        "%s: the upload Location points at %s (%s); refused",
                        what, o, fl_origin_verdict_text(v));
  }
  if (v == FL_ORIGIN_OTHER)
    fl_log(FL_LOG_DEBUG, NULL,
           "%s: the upload goes to another origin, without credentials", what);
  return FL_OK;
}

/* An upload resumes after this many failed chunks in a row at most. */
#define RESUME_MAX_IN_A_ROW 3

/* Where an upload session stands: GET its Location, 204 with "Range: 0-E"
 * (Distribution writes "0-0" for an empty session too, so E = 0 counts as
 * nothing when nothing was acknowledged). *next gets E + 1; location gets
 * the fresh Location when the registry gives one. */
static fl_code upload_status(registry *r, const char *repo, char *location,
                             size_t locn, uint64_t acked, uint64_t *next,
                             fl_error *err) {
  char abs[URL_MAX], what[400];
  fl_http_response resp;
  snprintf(what, sizeof what, "checking the upload session of %s", repo);
  if (upload_url(r, location, abs, what, err) != FL_OK)
    return err->code;
  fl_http_request req = {
      .method = "GET", .url = abs, .repo = repo, .actions = "pull,push"};
  fl_code rc = fl_http_do(r->http, &req, &resp, err);
  if (rc != FL_OK)
    return rc;
  if (resp.status != 204 && resp.status != 200) {
    rc = fl_http_status_error(r->http, &resp, what, err);
    goto out;
  }
  const char *range = resp.range;
  if (range && strncmp(range, "bytes=", 6) == 0)
    range += 6;
  char *end = NULL;
  unsigned long long first = range ? strtoull(range, &end, 10) : 1;
  unsigned long long last = 0;
  if (first == 0 && end && *end == '-')
    last = strtoull(end + 1, &end, 10);
  if (!range || first != 0 || !end || *end != '\0') {
    rc = fl_error_set(err, FL_EPROTOCOL,
                      "%s: registry answered without a usable Range (%s)", what,
                      resp.range ? resp.range : "none");
    goto out;
  }
  *next = (last == 0 && acked == 0) ? 0 : (uint64_t)last + 1;
  if (resp.location)
    snprintf(location, locn, "%s", resp.location);
out:
  fl_http_response_clear(&resp);
  return rc;
}

/* What a registry that takes no chunked uploads answers the first PATCH. */
static int refuses_chunks(long status) {
  return status == 400 || status == 405 || status == 411 || status == 415 ||
         status == 416 || status == 501;
}

/* Upload size bytes of src in PATCH chunks (Content-Range) to the session at
 * location (updated from each answer). With src->seek, a chunk that fails
 * in transit (connection lost, timeout, 5xx) is followed by an upload status
 * request, and the upload goes on from where the registry says it stopped;
 * when the session cannot say (Distribution answers 404 once a cut request
 * reached it), the chunk's error is returned. *refused is set when the
 * registry turned the first chunk down as if it took no chunked uploads. */
static fl_code upload_chunks(registry *r, const char *repo, const char *digest,
                             char *location, size_t locn, uint64_t size,
                             uint64_t chunk_size, fl_source *src,
                             const char *what, int *refused, fl_error *err) {
  uint64_t at = 0; /* the registry has bytes 0..at-1 */
  int in_a_row = 0;
  while (at < size) {
    uint64_t n = size - at < chunk_size ? size - at : chunk_size;
    char crange[96], abs[URL_MAX];
    snprintf(crange, sizeof crange, "Content-Range: %llu-%llu",
             (unsigned long long)at, (unsigned long long)(at + n - 1));
    const char *headers[] = {crange, "Content-Type: application/octet-stream",
                             NULL};
    chunk_source cs = {src, n, 0, 0};
    fl_source chunk = {chunk_read, NULL, &cs, NULL};
    if (upload_url(r, location, abs, what, err) != FL_OK)
      return err->code;
    fl_http_request req = {.method = "PATCH",
                           .url = abs,
                           .repo = repo,
                           .actions = "pull,push",
                           .headers = headers,
                           .source = &chunk,
                           .source_len = n};
    fl_http_response resp;
    fl_code rc = fl_http_do(r->http, &req, &resp, err);
    if (rc == FL_OK && resp.status == 202) {
      if (resp.location)
        snprintf(location, locn, "%s", resp.location);
      fl_http_response_clear(&resp);
      at += n;
      in_a_row = 0;
      continue;
    }
    int interrupted =
        !cs.source_failed &&
        (rc == FL_EUNREACHABLE || rc == FL_ETIMEOUT ||
         (rc == FL_OK &&
          (resp.status >= 500 || resp.status == 408 || resp.status == 429)));
    if (rc == FL_OK) {
      *refused = at == 0 && !cs.source_failed && refuses_chunks(resp.status);
      rc = fl_http_status_error(r->http, &resp, what, err);
    }
    fl_http_response_clear(&resp);
    if (*refused || !interrupted || !src->seek ||
        in_a_row >= RESUME_MAX_IN_A_ROW)
      return rc;

    uint64_t stopped = at + cs.given, next = 0;
    fl_error serr;
    fl_code src_rc = upload_status(r, repo, location, locn, at, &next, &serr);
    if (src_rc == FL_OK && next > stopped)
      src_rc =
          fl_error_set(&serr, FL_EPROTOCOL,
                       "the registry reports %llu bytes, more than the "
                       "%llu sent",
                       (unsigned long long)next, (unsigned long long)stopped);
    if (src_rc == FL_OK)
      src_rc = src->seek(src->ud, next, &serr);
    if (src_rc != FL_OK) {
      fl_log(FL_LOG_INFO, NULL,
             "blob %s: upload interrupted at %llu of %llu bytes and cannot "
             "resume (%s); it starts over",
             digest, (unsigned long long)stopped, (unsigned long long)size,
             serr.msg);
      return rc;
    }
    fl_log(FL_LOG_WARN, NULL,
           "blob %s: upload interrupted at %llu of %llu bytes; resuming from "
           "%llu (registry upload status): %s",
           digest, (unsigned long long)stopped, (unsigned long long)size,
           (unsigned long long)next, err->msg);
    fl_http_count_retry();
    in_a_row++;
    at = next;
  }
  return FL_OK;
}

/* Whether blob `size` goes up resumably, and in which chunks (0: one
 * streamed PUT). `chunk_size`, when set, applies to every blob. */
static uint64_t upload_chunk_size(registry *r, uint64_t size,
                                  const fl_source *src) {
  if (r->chunk_size)
    return r->chunk_size;
  if (src->seek && r->resume_chunk_size && size >= FL_RESUME_THRESHOLD &&
      size > r->resume_chunk_size && !atomic_load(&r->chunks_refused))
    return r->resume_chunk_size;
  return 0;
}

/* Answers to a mount query that mean "not like this" rather than "not
 * allowed" or "busy": the registry gets plain POSTs from then on. */
static int refuses_mount_query(long status) {
  return status >= 400 && status < 500 && status != 401 && status != 403 &&
         status != 408 && status != 429;
}

/* POST an upload session; location gets where to send the bytes. With
 * `digest`, first find out whether the repository has the blob already
 * (*present = 1: no session, nothing to send). The POST itself asks, as a
 * mount from the repository itself (`?mount=DIGEST&from=REPO`): a registry
 * that has the blob there answers 201, one that has not opens the session
 * it would open anyway (the OCI spec's 202 fallback), which saves the HEAD
 * before every upload. A registry that rejects the query gets a HEAD and a
 * plain POST, now and for the rest of the run. */
static fl_code open_session(registry *r, const char *repo, const char *digest,
                            char *location, size_t locn, int *present,
                            const char *what, fl_error *err) {
  fl_http_response resp;
  fl_code rc;
  *present = 0;
  if (digest && !atomic_load(&r->self_mount_refused)) {
    char query[FL_DIGEST_STR_MAX + 300];
    snprintf(query, sizeof query, "?mount=%s&from=%s", digest, repo);
    rc = start_upload(r, repo, query, NULL, &resp, what, err);
    if (rc == FL_OK || !refuses_mount_query(resp.status))
      goto out;
    fl_log(FL_LOG_INFO, NULL,
           "%s rejected a mount query (%s); uploads ask with a HEAD first "
           "instead",
           r->describe, err->msg);
    atomic_store(&r->self_mount_refused, 1);
    fl_http_response_clear(&resp);
  }
  if (digest) {
    uint64_t size;
    fl_error herr;
    if (reg_blob_exists(&r->base, repo, digest, &size, &herr) == FL_OK) {
      *present = 1;
      return FL_OK;
    }
  }
  rc = start_upload(r, repo, "", NULL, &resp, what, err);
out:
  if (rc == FL_OK && resp.status == 201)
    *present = 1;
  else if (rc == FL_OK)
    snprintf(location, locn, "%s", resp.location ? resp.location : "");
  fl_http_response_clear(&resp);
  return rc;
}

static fl_code reg_blob_put(fl_endpoint *ep, const char *repo,
                            const char *digest, uint64_t size, fl_source *src,
                            fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  char what[600], location[URL_MAX], url[URL_MAX];
  fl_code rc = check_repo(repo, err);
  if (rc == FL_OK)
    rc = fl_digest_parse(digest, NULL, err);
  if (rc != FL_OK)
    return rc;
  snprintf(what, sizeof what, "uploading blob %s to %s", digest, repo);
  int present = 0;
  rc = open_session(r, repo, digest, location, sizeof location, &present, what,
                    err);
  if (rc != FL_OK || present)
    return rc; /* present: the registry has it, nothing to send */

  fl_http_request req = {.method = "PUT", .repo = repo, .actions = "pull,push"};
  const char *octet[] = {"Content-Type: application/octet-stream", NULL};
  uint64_t chunk_size = upload_chunk_size(r, size, src);
  if (chunk_size) {
    int refused = 0;
    rc = upload_chunks(r, repo, digest, location, sizeof location, size,
                       chunk_size, src, what, &refused, err);
    if (rc != FL_OK && refused && !r->chunk_size) {
      /* no chunked uploads here: this blob and the next in one request */
      fl_log(FL_LOG_INFO, NULL,
             "%s refused a chunked upload (%s); large blobs go up in one "
             "request, without resuming",
             r->describe, err->msg);
      atomic_store(&r->chunks_refused, 1);
      cancel_upload(r, location, repo);
      if ((rc = src->seek(src->ud, 0, err)) != FL_OK ||
          (rc = open_session(r, repo, NULL, location, sizeof location, &present,
                             what, err)) != FL_OK)
        return rc;
      chunk_size = 0;
    } else if (rc != FL_OK) {
      goto fail;
    }
  }
  if (!chunk_size) {
    req.source = src;
    req.source_len = size;
    req.headers = octet;
  }
  if ((rc = with_digest(r, location, digest, url, sizeof url, what, err)) !=
      FL_OK)
    goto fail;
  req.url = url;
  rc = fl_http_do(r->http, &req, &resp, err);
  if (rc == FL_OK && resp.status != 201) {
    rc = fl_http_status_error(r->http, &resp, what, err);
  }
  fl_http_response_clear(&resp);
  if (rc == FL_OK)
    return FL_OK;
fail:
  cancel_upload(r, location, repo);
  return rc;
}

static fl_code reg_blob_mount(fl_endpoint *ep, const char *repo,
                              const char *from, const char *digest,
                              fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  char query[600], scope[400], what[700];
  fl_code rc = check_repo(repo, err);
  if (rc == FL_OK)
    rc = check_repo(from, err);
  if (rc == FL_OK)
    rc = fl_digest_parse(digest, NULL, err);
  if (rc != FL_OK)
    return rc;
  snprintf(query, sizeof query, "?mount=%s&from=%s", digest, from);
  snprintf(scope, sizeof scope, "repository:%s:pull", from);
  snprintf(what, sizeof what, "mounting blob %s from %s into %s", digest, from,
           repo);
  rc = start_upload(r, repo, query, scope, &resp, what, err);
  if (rc == FL_OK && resp.status == 202) {
    /* The registry declined and opened an upload instead: close it. */
    cancel_upload(r, resp.location, repo);
    rc = fl_error_set(err, FL_EUNSUPPORTED, "%s: registry declined the mount",
                      what);
  }
  fl_http_response_clear(&resp);
  return rc;
}

static fl_code reg_blob_delete(fl_endpoint *ep, const char *repo,
                               const char *digest, fl_error *err) {
  reg_op op;
  fl_code rc = prepare(&op, OBJ_BLOB, repo, digest, err,
                       "deleting blob %s from %s", digest, repo);
  return rc != FL_OK ? rc : delete_op(as_registry(ep), repo, &op, NULL, err);
}

static fl_code reg_referrers(fl_endpoint *ep, const char *repo,
                             const char *digest, const char *artifact_type,
                             fl_manifest *out, fl_error *err) {
  registry *r = as_registry(ep);
  fl_http_response resp;
  reg_op op;
  memset(out, 0, sizeof *out);
  fl_code rc = prepare(&op, OBJ_BLOB, repo, digest, err,
                       "listing referrers of %s@%s", repo, digest);
  if (rc != FL_OK)
    return rc;
  char *esc = artifact_type ? curl_easy_escape(NULL, artifact_type, 0) : NULL;
  snprintf(op.url, sizeof op.url, "/v2/%s/referrers/%s%s%s", repo, digest,
           artifact_type ? "?artifactType=" : "", esc ? esc : "");
  curl_free(esc);
  const char *accept[] = {"Accept: " FL_MT_OCI_INDEX, NULL};
  fl_http_request req = {.method = "GET",
                         .url = op.url,
                         .repo = repo,
                         .actions = "pull",
                         .headers = accept,
                         .max_body = FL_MANIFEST_MAX};
  rc = fl_http_do(r->http, &req, &resp, err);
  if (rc != FL_OK)
    return rc;
  int is_index =
      resp.content_type &&
      strncmp(resp.content_type, FL_MT_OCI_INDEX, strlen(FL_MT_OCI_INDEX)) == 0;
  if (resp.status == 200 && is_index) {
    out->data = resp.body ? resp.body : calloc(1, 1);
    out->len = resp.body_len;
    resp.body = NULL;
    rc = out->data ? fl_manifest_check(out, FL_MT_OCI_INDEX, NULL, err)
                   : fl_error_set(err, FL_ENOMEM, "%s: out of memory", op.what);
  } else if (resp.status == 404 || resp.status == 200 || resp.status == 405 ||
             resp.status == 400) {
    rc = fl_error_set(err, FL_EUNSUPPORTED,
                      "%s: registry %s has no referrers API", op.what,
                      fl_http_host(r->http));
  } else {
    rc = fl_http_status_error(r->http, &resp, op.what, err);
  }
  fl_http_response_clear(&resp);
  return rc;
}

/* ---- the endpoint -------------------------------------------------------- */

static const char *reg_describe(fl_endpoint *ep) {
  return as_registry(ep)->describe;
}

static void reg_free(fl_endpoint *ep) {
  registry *r = as_registry(ep);
  fl_http_free(r->http);
  free(r);
}

static const fl_endpoint_ops registry_ops = {
    .kind = "registry",
    .ping = reg_ping,
    .catalog = reg_catalog,
    .tags = reg_tags,
    .manifest_get = reg_manifest_get,
    .manifest_head = reg_manifest_head,
    .manifest_put = reg_manifest_put,
    .manifest_delete = reg_manifest_delete,
    .blob_exists = reg_blob_exists,
    .blob_get = reg_blob_get,
    .blob_put = reg_blob_put,
    .blob_mount = reg_blob_mount,
    .blob_delete = reg_blob_delete,
    .referrers = reg_referrers,
    .describe = reg_describe,
    .free = reg_free,
    .upload_finds_present = 1,
};

fl_code fl_registry_open(const fl_registry_config *cfg, fl_endpoint **out,
                         fl_error *err) {
  *out = NULL;
  registry *r = calloc(1, sizeof *r);
  if (!r)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  fl_code rc = fl_http_new(&cfg->http, &r->http, err);
  if (rc != FL_OK) {
    free(r);
    return rc;
  }
  r->base.ops = &registry_ops;
  r->chunk_size = cfg->chunk_size;
  r->resume_chunk_size = cfg->resume_chunk_size;
  r->page_size = cfg->page_size ? cfg->page_size : 1000;
  r->max_list_pages =
      cfg->max_list_pages ? cfg->max_list_pages : FL_LIST_PAGES_DEFAULT;
  r->max_list_entries =
      cfg->max_list_entries ? cfg->max_list_entries : FL_LIST_ENTRIES_DEFAULT;
  snprintf(r->describe, sizeof r->describe, "registry %s", cfg->http.host);
  *out = &r->base;
  return FL_OK;
}

fl_http *fl_registry_http(fl_endpoint *ep) {
  return ep && ep->ops == &registry_ops ? as_registry(ep)->http : NULL;
}
