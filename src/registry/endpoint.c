/*
 * endpoint.c - endpoint reference counts and the small value types shared
 * by every endpoint.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/endpoint.h"

fl_endpoint *fl_endpoint_ref(fl_endpoint *ep) {
  if (ep)
    atomic_fetch_add(&ep->extra_refs, 1);
  return ep;
}

void fl_endpoint_unref(fl_endpoint *ep) {
  if (ep && atomic_fetch_sub(&ep->extra_refs, 1) == 0)
    ep->ops->free(ep);
}

void fl_manifest_clear(fl_manifest *m) {
  if (!m)
    return;
  free(m->data);
  memset(m, 0, sizeof *m);
}

fl_code fl_strlist_push(fl_strlist *l, const char *s) {
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **items = realloc(l->items, cap * sizeof *items);
    if (!items)
      return FL_ENOMEM;
    l->items = items;
    l->cap = cap;
  }
  char *copy = strdup(s);
  if (!copy)
    return FL_ENOMEM;
  l->items[l->count++] = copy;
  return FL_OK;
}

void fl_strlist_clear(fl_strlist *l) {
  for (size_t i = 0; i < l->count; i++)
    free(l->items[i]);
  free(l->items);
  memset(l, 0, sizeof *l);
}

/* ---- small blobs in memory ----------------------------------------------- */

typedef struct mem_sink {
  char *data;
  size_t len, cap, max;
} mem_sink;

static fl_code mem_write(void *ud, const void *data, size_t len,
                         fl_error *err) {
  mem_sink *b = ud;
  if (len > b->max - b->len)
    return fl_error_set(err, FL_ETOO_LARGE, "over %zu bytes", b->max);
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16 * 1024;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
      return fl_error_set(err, FL_ENOMEM, "out of memory");
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  return FL_OK;
}

fl_code fl_endpoint_blob_read(fl_endpoint *ep, const char *repo,
                              const char *digest, size_t max, char **out,
                              size_t *len, fl_error *err) {
  mem_sink b = {.max = max};
  fl_sink sink = {mem_write, &b};
  fl_digest_alg alg;
  char actual[FL_DIGEST_STR_MAX];
  *out = NULL;
  *len = 0;
  fl_code rc = fl_digest_parse(digest, &alg, err);
  if (rc == FL_OK)
    rc = ep->ops->blob_get(ep, repo, digest, 0, &sink, err);
  if (rc == FL_ETOO_LARGE)
    fl_error_prefix(err, "blob %s in %s: ", digest, repo);
  if (rc != FL_OK) {
    free(b.data);
    return rc;
  }
  /* an empty blob made no write, so no buffer */
  char *data = b.data ? b.data : calloc(1, 1);
  if (!data)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  if (fl_digest_buffer(alg, data, b.len, actual) != FL_OK) {
    free(data);
    return fl_error_set(err, FL_ENOMEM, "hashing blob %s: out of memory",
                        digest);
  }
  if (strcmp(actual, digest) != 0) {
    free(data);
    return fl_error_set(err, FL_EDIGEST_MISMATCH,
                        "blob %s in %s: content hashes to %s", digest, repo,
                        actual);
  }
  data[b.len] = '\0'; /* mem_write keeps room for it */
  *out = data;
  *len = b.len;
  return FL_OK;
}
