/*
 * route.h - the HTTP API's routes and request-body checks, as pure functions.
 *
 * fl_serve_route maps a method and a URL path to one route and its path
 * parameter (a job id or a sync name, checked against a strict alphabet so
 * it never needs escaping); fl_serve_check_job parses and checks the JSON
 * body of POST /api/v1/jobs (its shape only: the sync file's schema checks
 * the values on the Lua thread). Neither touches the server, so both are
 * unit-tested and fuzzed on their own.
 */
#ifndef FL_SERVE_ROUTE_H
#define FL_SERVE_ROUTE_H

#include <jansson.h>
#include <stddef.h>

typedef enum fl_route_id {
  FL_ROUTE_NOT_FOUND = 0,
  FL_ROUTE_METHOD,    /* path known, method not allowed (allow says which) */
  FL_ROUTE_BAD_PARAM, /* a path parameter with characters outside its alphabet */
  FL_ROUTE_PREFLIGHT, /* OPTIONS on a known path (CORS preflight) */
  FL_ROUTE_HEALTHZ,
  FL_ROUTE_READYZ,
  FL_ROUTE_METRICS,
  FL_ROUTE_JOBS_LIST,
  FL_ROUTE_JOBS_CREATE,
  FL_ROUTE_JOB_GET,
  FL_ROUTE_JOB_CANCEL,
  FL_ROUTE_SYNCS,
  FL_ROUTE_SYNC_RUN,
  FL_ROUTE_RELOAD
} fl_route_id;

#define FL_ROUTE_PARAM_MAX 64

typedef struct fl_route {
  fl_route_id id;
  int api;                            /* under /api/: needs a key */
  const char *allow;                  /* methods allowed on the path */
  char param[FL_ROUTE_PARAM_MAX + 1]; /* job id or sync name, or "" */
} fl_route;

/* Route method + path (no query string). Always fills *out. */
void fl_serve_route(const char *method, const char *path, fl_route *out);

/* 1 if s is a valid path parameter: 1..64 of [A-Za-z0-9._-], not starting
 * with '.'. */
int fl_serve_param_ok(const char *s, size_t len);

/* Parse and check a job request body. On success returns the object (a new
 * reference) with msg untouched; otherwise NULL and a message for the client
 * in msg (never echoing more than a short field name). */
json_t *fl_serve_check_job(const char *body, size_t len, char *msg,
                           size_t msgsz);

#endif
