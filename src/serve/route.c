/*
 * route.c - routes and request-body checks (see route.h).
 */
#include "serve/route.h"

#include <stdio.h>
#include <string.h>

int fl_serve_param_ok(const char *s, size_t len) {
  if (len == 0 || len > FL_ROUTE_PARAM_MAX || s[0] == '.')
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* Match "prefix{param}suffix": the parameter is one path segment. */
static int match_param(const char *path, const char *prefix, const char *suffix,
                       fl_route *out) {
  size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);
  if (n <= pl + sl || strncmp(path, prefix, pl) != 0 ||
      strcmp(path + n - sl, suffix) != 0)
    return 0;
  const char *p = path + pl;
  size_t len = n - pl - sl;
  if (memchr(p, '/', len))
    return 0;
  if (!fl_serve_param_ok(p, len))
    return -1;
  memcpy(out->param, p, len);
  out->param[len] = '\0';
  return 1;
}

static void pick(const char *method, fl_route *out, const char *allow,
                 const char *m1, fl_route_id r1, const char *m2,
                 fl_route_id r2) {
  out->allow = allow;
  if (strcmp(method, "OPTIONS") == 0)
    out->id = FL_ROUTE_PREFLIGHT;
  else if (m1 && (strcmp(method, m1) == 0 ||
                  (strcmp(method, "HEAD") == 0 && strcmp(m1, "GET") == 0)))
    out->id = r1;
  else if (m2 && strcmp(method, m2) == 0)
    out->id = r2;
  else
    out->id = FL_ROUTE_METHOD;
}

void fl_serve_route(const char *method, const char *path, fl_route *out) {
  memset(out, 0, sizeof *out);
  out->id = FL_ROUTE_NOT_FOUND;
  if (!method || !path)
    return;
  out->api = strncmp(path, "/api/", 5) == 0;
  int m;
  if (strcmp(path, "/healthz") == 0)
    pick(method, out, "GET, HEAD", "GET", FL_ROUTE_HEALTHZ, NULL, 0);
  else if (strcmp(path, "/readyz") == 0)
    pick(method, out, "GET, HEAD", "GET", FL_ROUTE_READYZ, NULL, 0);
  else if (strcmp(path, "/metrics") == 0)
    pick(method, out, "GET, HEAD", "GET", FL_ROUTE_METRICS, NULL, 0);
  else if (strcmp(path, "/api/v1/jobs") == 0)
    pick(method, out, "GET, POST", "GET", FL_ROUTE_JOBS_LIST, "POST",
         FL_ROUTE_JOBS_CREATE);
  else if (strcmp(path, "/api/v1/syncs") == 0)
    pick(method, out, "GET", "GET", FL_ROUTE_SYNCS, NULL, 0);
  else if (strcmp(path, "/api/v1/reload") == 0)
    pick(method, out, "POST", "POST", FL_ROUTE_RELOAD, NULL, 0);
  else if ((m = match_param(path, "/api/v1/jobs/", "", out)) != 0) {
    if (m < 0) {
      out->id = FL_ROUTE_BAD_PARAM;
      return;
    }
    pick(method, out, "GET, DELETE", "GET", FL_ROUTE_JOB_GET, "DELETE",
         FL_ROUTE_JOB_CANCEL);
  } else if ((m = match_param(path, "/api/v1/sync/", "/run", out)) != 0) {
    if (m < 0) {
      out->id = FL_ROUTE_BAD_PARAM;
      return;
    }
    pick(method, out, "POST", "POST", FL_ROUTE_SYNC_RUN, NULL, 0);
  }
}

/* ---- the job body ------------------------------------------------------- */

static int is_string_or_strings(const json_t *v) {
  if (json_is_string(v))
    return 1;
  if (!json_is_array(v))
    return 0;
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x) {
    if (!json_is_string(x))
      return 0;
  }
  return 1;
}

typedef struct field {
  const char *name;
  int (*check)(const json_t *v);
  const char *want;
} field;

static int is_string(const json_t *v) { return json_is_string(v); }
static int is_object(const json_t *v) { return json_is_object(v); }
static int is_bool(const json_t *v) { return json_is_boolean(v); }

static const field TOP[] = {
    {"sync", is_string, "a string (a sync entry's name)"},
    {"source", is_object, "an object"},
    {"destination", is_object, "an object"},
    {"tags", is_object, "an object"},
    {"platforms", is_string_or_strings, "a string or a list of strings"},
    {"referrers", is_bool, "true or false"},
    {NULL, NULL, NULL}};

static const field SOURCE[] = {
    {"registry", is_string, "a string"},
    {"repository", is_string_or_strings, "a string or a list of strings"},
    {"repository_pattern", is_string, "a string"},
    {"repository_regex", is_string, "a string"},
    {NULL, NULL, NULL}};

static const field DESTINATION[] = {{"registry", is_string, "a string"},
                                    {"prefix", is_string, "a string"},
                                    {"template", is_string, "a string"},
                                    {NULL, NULL, NULL}};

/* 0 if every key of obj is known and well-typed; else a message. */
static int check_fields(const json_t *obj, const field *fields,
                        const char *where, char *msg, size_t msgsz) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    const field *f = fields;
    while (f->name && strcmp(f->name, key) != 0)
      f++;
    if (!f->name) {
      char names[256] = "";
      for (const field *g = fields; g->name; g++) {
        if (g != fields)
          strncat(names, ", ", sizeof names - strlen(names) - 1);
        strncat(names, g->name, sizeof names - strlen(names) - 1);
      }
      snprintf(msg, msgsz, "%sunknown field '%.40s%s' (known: %s)", where, key,
               strlen(key) > 40 ? "..." : "", names);
      return -1;
    }
    if (!f->check(v)) {
      snprintf(msg, msgsz, "%s'%s' must be %s", where, f->name, f->want);
      return -1;
    }
  }
  return 0;
}

json_t *fl_serve_check_job(const char *body, size_t len, char *msg,
                           size_t msgsz) {
  json_error_t jerr;
  if (len == 0) {
    snprintf(msg, msgsz, "the request needs a JSON body");
    return NULL;
  }
  json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc) {
    snprintf(msg, msgsz, "malformed JSON at line %d, column %d: %.120s",
             jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  if (!json_is_object(doc)) {
    snprintf(msg, msgsz, "the body must be a JSON object");
    goto bad;
  }
  if (check_fields(doc, TOP, "", msg, msgsz) != 0)
    goto bad;
  json_t *sync = json_object_get(doc, "sync");
  if (sync) {
    if (json_object_size(doc) != 1) {
      snprintf(msg, msgsz,
               "give either 'sync' (a configured entry) or an entry's fields "
               "(source, destination, ...), not both");
      goto bad;
    }
    if (!fl_serve_param_ok(json_string_value(sync), json_string_length(sync))) {
      snprintf(msg, msgsz,
               "'sync' must be a sync entry's name "
               "(letters, digits, '.', '_', '-')");
      goto bad;
    }
    return doc;
  }
  json_t *src = json_object_get(doc, "source");
  json_t *dst = json_object_get(doc, "destination");
  if (!src || !dst) {
    snprintf(msg, msgsz,
             "give 'sync' (a configured entry's name) or both "
             "'source' and 'destination'");
    goto bad;
  }
  if (check_fields(src, SOURCE, "source: ", msg, msgsz) != 0 ||
      check_fields(dst, DESTINATION, "destination: ", msg, msgsz) != 0)
    goto bad;
  if (!json_object_get(src, "registry") || !json_object_get(dst, "registry")) {
    snprintf(msg, msgsz, "'source' and 'destination' each need 'registry'");
    goto bad;
  }
  return doc;
bad:
  json_decref(doc);
  return NULL;
}
