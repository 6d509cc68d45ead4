/*
 * endpoint.c - endpoint reference counts and the small value types shared
 * by every endpoint.
 */
#include <stdatomic.h>
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
