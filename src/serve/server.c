/*
 * server.c - the HTTP listener: limits, CORS, auth, routes (see server.h).
 */
#include "serve/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "serve/route.h"

#define URL_MAX 2048
#define HEADER_MEMORY (32 * 1024) /* request line + headers per connection */
#define POOL_THREADS 4

/* A connection being watched for its headers' deadline. */
typedef struct watch {
  int fd;            /* -1: free */
  long long started; /* when the current request began (monotonic ms) */
  int headers_done;  /* the current request's headers arrived */
} watch;

struct fl_server {
  struct MHD_Daemon *main, *metrics;
  fl_jobs *jobs;
  fl_metrics *metrics_reg;
  fl_auth *auth;
  fl_notify *notify;
  fl_probe *probe;
  int tls;
  unsigned timeout_s;
  size_t max_body;
  char **cors;
  size_t ncors;
  pthread_mutex_t mu; /* ready, reason, syncs, audit */
  int ready;
  char reason[128];
  json_t *syncs;
  int audit_fd;
  char rid_prefix[16];
  atomic_ulong rid_next;
  /* slow-header reaper */
  pthread_mutex_t wmu;
  watch *watches;
  size_t nwatches;
  pthread_t reaper;
  int reaper_started;
  atomic_int stopping;
};

/* What one request accumulates between handler calls. */
typedef struct request {
  char id[40];
  char *body;
  size_t len;
  int too_big;
  int metrics_only; /* on the metrics listener */
} request;

static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_now(char *out, size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, n, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000L));
}

/* ---- audit log ----------------------------------------------------------- */

void fl_server_audit(fl_server *s, const char *event, json_t *fields) {
  if (s->audit_fd < 0)
    return;
  char now[40];
  iso_now(now, sizeof now);
  json_t *line = json_pack("{s:s, s:s}", "time", now, "event", event);
  if (!line)
    return;
  if (fields)
    json_object_update(line, fields);
  char *text = json_dumps(line, JSON_COMPACT);
  json_decref(line);
  if (!text)
    return;
  size_t n = strlen(text);
  text[n] = '\n'; /* json_dumps' NUL becomes the newline */
  pthread_mutex_lock(&s->mu);
  ssize_t w = write(s->audit_fd, text, n + 1); /* one write: whole lines */
  pthread_mutex_unlock(&s->mu);
  if (w != (ssize_t)(n + 1))
    FL_WARN("serve: writing the audit log failed");
  free(text);
}

static void audit_request(fl_server *s, const char *event, const request *r,
                          const char *client, const char *key,
                          const char *value) {
  json_t *f = json_pack("{s:s, s:s}", "request_id", r->id, "client", client);
  if (f && key)
    json_object_set_new(f, key, json_string(value));
  fl_server_audit(s, event, f);
  json_decref(f);
}

/* ---- responses ------------------------------------------------------------ */

static const char *allowed_origin(fl_server *s, const char *origin) {
  for (size_t i = 0; origin && i < s->ncors; i++)
    if (strcmp(s->cors[i], origin) == 0)
      return s->cors[i];
  return NULL;
}

static enum MHD_Result send_body(fl_server *s, struct MHD_Connection *c,
                                 const request *r, unsigned status,
                                 const char *type, const char *body, size_t len,
                                 const char *const *headers) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", type);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  MHD_add_response_header(resp, "Content-Security-Policy",
                          "default-src 'none'");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  if (s->tls)
    MHD_add_response_header(resp, "Strict-Transport-Security",
                            "max-age=63072000");
  MHD_add_response_header(resp, "X-Request-Id", r->id);
  const char *origin = allowed_origin(
      s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"));
  if (origin) {
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Vary", "Origin");
  }
  for (size_t i = 0; headers && headers[i]; i += 2)
    MHD_add_response_header(resp, headers[i], headers[i + 1]);
  char code[8];
  snprintf(code, sizeof code, "%u", status);
  const char *labels[] = {code, NULL};
  fl_metrics_add(s->metrics_reg, "freightliner_http_requests_total", labels, 1);
  enum MHD_Result rc = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return rc;
}

static enum MHD_Result send_json(fl_server *s, struct MHD_Connection *c,
                                 const request *r, unsigned status, json_t *doc,
                                 const char *const *headers);

/* {"error": msg, "request_id": id}; msg is client-safe text. */
static enum MHD_Result send_error(fl_server *s, struct MHD_Connection *c,
                                  const request *r, unsigned status,
                                  const char *msg, const char *const *headers) {
  json_t *doc = json_pack("{s:s, s:s}", "error", msg, "request_id", r->id);
  return send_json(s, c, r, status, doc, headers);
}

/* Sends doc (stolen); NULL doc (out of memory) becomes a 500. */
static enum MHD_Result send_json(fl_server *s, struct MHD_Connection *c,
                                 const request *r, unsigned status, json_t *doc,
                                 const char *const *headers) {
  char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  if (!text) {
    FL_WARN("serve: request %s: out of memory building the response", r->id);
    static const char oom[] = "{\"error\":\"internal error\"}";
    return send_body(s, c, r, 500, "application/json", oom, sizeof oom - 1,
                     NULL);
  }
  size_t n = strlen(text);
  text[n] = '\n';
  enum MHD_Result rc =
      send_body(s, c, r, status, "application/json", text, n + 1, headers);
  free(text);
  return rc;
}

/* ---- the handlers ---------------------------------------------------------- */

static int sync_known(fl_server *s, const char *name) {
  int known = 0;
  pthread_mutex_lock(&s->mu);
  size_t i;
  json_t *e;
  json_array_foreach(s->syncs, i, e) {
    const char *n = json_string_value(json_object_get(e, "name"));
    if (n && strcmp(n, name) == 0)
      known = 1;
  }
  pthread_mutex_unlock(&s->mu);
  return known;
}

static const char *const RETRY_5[] = {"Retry-After", "5", NULL};

static enum MHD_Result create_job(fl_server *s, struct MHD_Connection *c,
                                  const request *r, const char *client,
                                  json_t *body) {
  const char *sync = json_string_value(json_object_get(body, "sync"));
  if (sync && !sync_known(s, sync)) {
    json_decref(body);
    return send_error(s, c, r, 404, "no sync entry has that name", NULL);
  }
  char id[64];
  int rc = fl_jobs_create(s->jobs, body, "api", r->id, client, id);
  json_decref(body);
  if (rc != 0)
    return send_error(s, c, r, 503, "the job queue is full; try again later",
                      RETRY_5);
  audit_request(s, "job_create", r, client, "job", id);
  char location[128];
  snprintf(location, sizeof location, "/api/v1/jobs/%s", id);
  const char *headers[] = {"Location", location, NULL};
  return send_json(s, c, r, 202,
                   json_pack("{s:s, s:s, s:s}", "id", id, "state", "queued",
                             "location", location),
                   headers);
}

/* A query argument as a size; -1 when malformed. */
static long long size_arg(struct MHD_Connection *c, const char *name,
                          long long dflt, long long max) {
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
  if (!v)
    return dflt;
  char *end;
  long long n = strtoll(v, &end, 10);
  if (*v == '\0' || *end || n < 0 || n > max)
    return -1;
  return n;
}

static enum MHD_Result metrics_page(fl_server *s, struct MHD_Connection *c,
                                    const request *r) {
  fl_metrics_set(s->metrics_reg, "freightliner_job_queue_depth", NULL,
                 (double)fl_jobs_queue_depth(s->jobs));
  static const char *const states[] = {"queued",      "running",   "succeeded",
                                       "failed",      "cancelled", "invalid",
                                       "interrupted", "refused"};
  size_t counts[sizeof states / sizeof *states];
  fl_jobs_count_states(s->jobs, states, sizeof states / sizeof *states, counts);
  for (size_t i = 0; i < sizeof states / sizeof *states; i++) {
    const char *labels[] = {states[i], NULL};
    fl_metrics_set(s->metrics_reg, "freightliner_jobs", labels,
                   (double)counts[i]);
  }
  size_t len;
  char *text = fl_metrics_render(s->metrics_reg, &len);
  if (!text)
    return send_error(s, c, r, 500, "internal error", NULL);
  enum MHD_Result rc =
      send_body(s, c, r, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                len, NULL);
  free(text);
  return rc;
}

static enum MHD_Result authorized_api(fl_server *s, struct MHD_Connection *c,
                                      request *r, const fl_route *rt,
                                      const char *client) {
  switch (rt->id) {
  case FL_ROUTE_JOBS_LIST: {
    long long limit = size_arg(c, "limit", 50, 500);
    long long offset = size_arg(c, "offset", 0, 1LL << 40);
    if (limit < 1 || offset < 0)
      return send_error(s, c, r, 400,
                        "limit must be 1..500 and offset a whole number >= 0",
                        NULL);
    return send_json(s, c, r, 200,
                     fl_jobs_list(s->jobs, (size_t)offset, (size_t)limit),
                     NULL);
  }
  case FL_ROUTE_JOBS_CREATE: {
    char msg[256];
    json_t *body = fl_serve_check_job(r->body, r->len, msg, sizeof msg);
    if (!body)
      return send_error(s, c, r, 400, msg, NULL);
    return create_job(s, c, r, client, body);
  }
  case FL_ROUTE_JOB_GET: {
    json_t *doc = fl_jobs_get(s->jobs, rt->param);
    if (!doc)
      return send_error(s, c, r, 404, "no job has that id", NULL);
    return send_json(s, c, r, 200, doc, NULL);
  }
  case FL_ROUTE_JOB_CANCEL: {
    int rc = fl_jobs_cancel(s->jobs, rt->param, r->id, client);
    if (rc == 404)
      return send_error(s, c, r, 404, "no job has that id", NULL);
    if (rc == 409)
      return send_error(s, c, r, 409, "the job has finished already", NULL);
    if (rc != 0)
      return send_error(s, c, r, 503, "the job queue is full; try again later",
                        RETRY_5);
    audit_request(s, "job_cancel", r, client, "job", rt->param);
    return send_json(
        s, c, r, 202,
        json_pack("{s:s, s:s}", "id", rt->param, "state", "cancelling"), NULL);
  }
  case FL_ROUTE_SYNCS: {
    pthread_mutex_lock(&s->mu);
    json_t *doc = json_pack("{s:O}", "syncs", s->syncs);
    json_t *copy = doc ? json_deep_copy(doc) : NULL;
    json_decref(doc);
    pthread_mutex_unlock(&s->mu);
    return send_json(s, c, r, 200, copy, NULL);
  }
  case FL_ROUTE_SYNC_RUN: {
    if (r->len > 0)
      return send_error(s, c, r, 400, "this request takes no body", NULL);
    return create_job(s, c, r, client, json_pack("{s:s}", "sync", rt->param));
  }
  case FL_ROUTE_RELOAD:
    if (fl_jobs_post(s->jobs, FL_JOBS_RELOAD, r->id, client) != 0)
      return send_error(s, c, r, 503, "the job queue is full; try again later",
                        RETRY_5);
    return send_json(s, c, r, 202,
                     json_pack("{s:s}", "status", "reload requested"), NULL);
  default:
    return send_error(s, c, r, 404, "not found", NULL);
  }
}

/* The API key check with the lockout; NULL when authorized, else the
 * response was queued and its result is in *rc. */
static int check_key(fl_server *s, struct MHD_Connection *c, request *r,
                     const char *client, enum MHD_Result *rc) {
  long long now = mono_ms();
  long locked = fl_auth_locked(s->auth, client, now);
  if (locked > 0) {
    char secs[24];
    snprintf(secs, sizeof secs, "%ld", locked);
    const char *headers[] = {"Retry-After", secs, NULL};
    *rc = send_error(s, c, r, 429, "too many requests", headers);
    return 0;
  }
  const char *h =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (h && strncasecmp(h, "Bearer ", 7) == 0) {
    const char *key = h + 7;
    while (*key == ' ')
      key++;
    if (*key && fl_auth_check(s->auth, key, strlen(key))) {
      fl_auth_succeeded(s->auth, client);
      return 1;
    }
  }
  long lock = fl_auth_failed(s->auth, client, now);
  fl_metrics_add(s->metrics_reg, "freightliner_auth_failures_total", NULL, 1);
  audit_request(s, "auth_failure", r, client, NULL, NULL);
  if (lock > 0) {
    fl_metrics_add(s->metrics_reg, "freightliner_auth_lockouts_total", NULL, 1);
    char secs[24];
    snprintf(secs, sizeof secs, "%ld", lock);
    audit_request(s, "auth_lockout", r, client, "seconds", secs);
  }
  static const char *const challenge[] = {
      "WWW-Authenticate", "Bearer realm=\"freightliner\"", NULL};
  *rc = send_error(s, c, r, 401, "unauthorized", challenge);
  return 0;
}

static void client_address(struct MHD_Connection *c, char *out, size_t n) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(out, n, "unknown");
  if (!ci || !ci->client_addr)
    return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET,
              &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
              (socklen_t)n);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6,
              &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
              (socklen_t)n);
}

static void mark_headers_done(fl_server *s, struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (!ci || !ci->socket_context)
    return;
  pthread_mutex_lock(&s->wmu);
  ((watch *)ci->socket_context)->headers_done = 1;
  pthread_mutex_unlock(&s->wmu);
}

static enum MHD_Result dispatch(fl_server *s, struct MHD_Connection *c,
                                request *r, const char *url,
                                const char *method) {
  char client[64];
  client_address(c, client, sizeof client);
  fl_route rt;
  fl_serve_route(method, url, &rt);
  if (r->metrics_only && rt.id >= FL_ROUTE_JOBS_LIST)
    rt.id = FL_ROUTE_NOT_FOUND;
  if (!r->metrics_only && s->metrics && rt.id == FL_ROUTE_METRICS)
    rt.id = FL_ROUTE_NOT_FOUND; /* served on the metrics listener */
  const char *origin =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  if (origin && !allowed_origin(s, origin))
    return send_error(s, c, r, 403, "cross-origin requests are not allowed",
                      NULL);
  if (r->too_big)
    return send_error(s, c, r, 413, "the request body is too large", NULL);
  enum MHD_Result rc;
  switch (rt.id) {
  case FL_ROUTE_NOT_FOUND:
  case FL_ROUTE_BAD_PARAM:
    return send_error(s, c, r, 404, "not found", NULL);
  case FL_ROUTE_METHOD: {
    const char *headers[] = {"Allow", rt.allow, NULL};
    return send_error(s, c, r, 405, "method not allowed", headers);
  }
  case FL_ROUTE_PREFLIGHT: {
    if (!origin)
      return send_error(s, c, r, 403, "cross-origin requests are not allowed",
                        NULL);
    const char *headers[] = {"Access-Control-Allow-Methods",
                             rt.allow,
                             "Access-Control-Allow-Headers",
                             "Authorization, Content-Type",
                             "Access-Control-Max-Age",
                             "600",
                             NULL};
    return send_body(s, c, r, 204, "text/plain", "", 0, headers);
  }
  case FL_ROUTE_HEALTHZ:
    return send_json(s, c, r, 200, json_pack("{s:s}", "status", "ok"), NULL);
  case FL_ROUTE_READYZ: {
    char unreachable[256], why[320];
    int reachable = fl_probe_ok(s->probe, unreachable, sizeof unreachable);
    pthread_mutex_lock(&s->mu);
    int ready = s->ready && reachable;
    if (!s->ready)
      snprintf(why, sizeof why, "%s", s->reason);
    else
      snprintf(why, sizeof why, "registry %s is unreachable", unreachable);
    json_t *doc =
        ready ? json_pack("{s:s}", "status", "ready")
              : json_pack("{s:s, s:s}", "status", "not ready", "reason", why);
    pthread_mutex_unlock(&s->mu);
    return send_json(s, c, r, ready ? 200 : 503, doc, NULL);
  }
  case FL_ROUTE_METRICS:
    return metrics_page(s, c, r);
  default:
    if (!check_key(s, c, r, client, &rc))
      return rc;
    return authorized_api(s, c, r, &rt, client);
  }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls,
                                  int metrics_only) {
  (void)version;
  fl_server *s = cls;
  request *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r)
      return MHD_NO;
    *con_cls = r;
    r->metrics_only = metrics_only;
    snprintf(r->id, sizeof r->id, "%s-%lu", s->rid_prefix,
             (unsigned long)atomic_fetch_add(&s->rid_next, 1));
    mark_headers_done(s, c);
    if (strlen(url) > URL_MAX)
      return send_error(s, c, r, 414, "the URL is too long", NULL);
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->max_body)
      return send_error(s, c, r, 413, "the request body is too large", NULL);
    return MHD_YES;
  }
  if (*upload_size > 0) {
    if (!r->too_big && r->len + *upload_size <= s->max_body) {
      char *b = realloc(r->body, r->len + *upload_size + 1);
      if (!b)
        return MHD_NO;
      r->body = b;
      memcpy(r->body + r->len, upload, *upload_size);
      r->len += *upload_size;
      r->body[r->len] = '\0';
    } else {
      r->too_big = 1;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  return dispatch(s, c, r, url, method);
}

static enum MHD_Result on_main(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
  return on_request(cls, c, url, method, version, upload, upload_size, con_cls,
                    0);
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  return on_request(cls, c, url, method, version, upload, upload_size, con_cls,
                    1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)toe;
  fl_server *s = cls;
  request *r = *con_cls;
  if (r) {
    free(r->body);
    free(r);
    *con_cls = NULL;
  }
  /* the next request on this connection has its own header deadline */
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (ci && ci->socket_context) {
    pthread_mutex_lock(&s->wmu);
    watch *w = ci->socket_context;
    w->headers_done = 0;
    w->started = mono_ms();
    pthread_mutex_unlock(&s->wmu);
  }
}

/* ---- the slow-header reaper ------------------------------------------------ */

static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  fl_server *s = cls;
  pthread_mutex_lock(&s->wmu);
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    for (size_t i = 0; ci && i < s->nwatches; i++)
      if (s->watches[i].fd < 0) {
        s->watches[i] = (watch){ci->connect_fd, mono_ms(), 0};
        *socket_context = &s->watches[i];
        break;
      }
  } else if (*socket_context) {
    ((watch *)*socket_context)->fd = -1;
    *socket_context = NULL;
  }
  pthread_mutex_unlock(&s->wmu);
}

static void *reaper(void *arg) {
  fl_server *s = arg;
  while (!atomic_load(&s->stopping)) {
    struct timespec ts = {0, 250 * 1000000L};
    nanosleep(&ts, NULL);
    long long now = mono_ms();
    pthread_mutex_lock(&s->wmu);
    for (size_t i = 0; i < s->nwatches; i++) {
      watch *w = &s->watches[i];
      if (w->fd >= 0 && !w->headers_done &&
          now - w->started >= 1000LL * s->timeout_s) {
        shutdown(w->fd, SHUT_RDWR); /* libmicrohttpd sees the end, closes */
        w->headers_done = 1;
      }
    }
    pthread_mutex_unlock(&s->wmu);
  }
  return NULL;
}

/* ---- start and stop ---------------------------------------------------------- */

static fl_code parse_listen(const char *spec, struct sockaddr_storage *ss,
                            fl_error *err) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host ||
      !colon[1])
    return fl_error_set(err, FL_EINVALID,
                        "listen address '%s' must be HOST:PORT", spec);
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = '\0';
  char *h = host;
  if (h[0] == '[' && h[strlen(h) - 1] == ']') {
    h[strlen(h) - 1] = '\0';
    h++;
  }
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  int rc = getaddrinfo(h, colon + 1, &hints, &ai);
  if (rc != 0)
    return fl_error_set(err, FL_EINVALID, "listen address '%s': %s", spec,
                        gai_strerror(rc));
  memset(ss, 0, sizeof *ss);
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  return FL_OK;
}

static struct MHD_Daemon *listen_on(fl_server *s, const fl_server_options *o,
                                    const char *spec,
                                    MHD_AccessHandlerCallback h,
                                    fl_error *err) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (parse_listen(spec, &ss, err) != FL_OK)
    return NULL;
  /* ITC: stopping wakes every pool thread at once, even one that has
   * stopped watching the listen socket at the connection limit */
  unsigned flags =
      MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  struct MHD_Daemon *d;
  unsigned max_conn = o->max_connections ? o->max_connections : 256;
  if (o->tls_cert) {
    d = MHD_start_daemon(
        flags | MHD_USE_TLS, 0, NULL, NULL, h, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
        o->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_HTTPS_MEM_CERT, o->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
        o->tls_key, MHD_OPTION_HTTPS_PRIORITIES,
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_END);
  } else {
    d = MHD_start_daemon(
        flags, 0, NULL, NULL, h, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
        o->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
  }
  if (!d)
    fl_error_set(err, FL_EIO,
                 "cannot listen on %s (address in use, not local, or a bad "
                 "TLS certificate/key)",
                 spec);
  return d;
}

fl_server *fl_server_start(const fl_server_options *o, fl_error *err) {
  fl_server *s = calloc(1, sizeof *s);
  if (!s) {
    fl_error_set(err, FL_ENOMEM, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->wmu, NULL);
  s->audit_fd = -1;
  s->tls = o->tls_cert != NULL;
  s->timeout_s = o->timeout_s ? o->timeout_s : 10;
  s->max_body = o->max_body ? o->max_body : 64 * 1024;
  s->jobs = fl_jobs_new(o->max_queued ? o->max_queued : 64,
                        o->max_kept ? o->max_kept : 200);
  s->metrics_reg = fl_metrics_new();
  s->auth = fl_auth_new();
  s->notify = fl_notify_new(256, s->metrics_reg);
  s->probe = fl_probe_new(o->probe_interval_s);
  s->syncs = json_array();
  unsigned max_conn = o->max_connections ? o->max_connections : 256;
  s->nwatches = 2 * (size_t)max_conn + 16;
  s->watches = calloc(s->nwatches, sizeof *s->watches);
  s->cors = o->ncors ? calloc(o->ncors, sizeof *s->cors) : NULL;
  if (!s->jobs || !s->metrics_reg || !s->auth || !s->notify || !s->probe ||
      !s->syncs || !s->watches || (o->ncors && !s->cors)) {
    fl_error_set(err, FL_ENOMEM, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < s->nwatches; i++)
    s->watches[i].fd = -1;
  for (size_t i = 0; i < o->ncors; i++)
    if (!(s->cors[s->ncors++] = strdup(o->cors_origins[i]))) {
      fl_error_set(err, FL_ENOMEM, "out of memory");
      goto fail;
    }
  snprintf(s->reason, sizeof s->reason, "starting");
  unsigned char rnd[4] = {0};
  RAND_bytes(rnd, sizeof rnd);
  snprintf(s->rid_prefix, sizeof s->rid_prefix, "%02x%02x%02x%02x", rnd[0],
           rnd[1], rnd[2], rnd[3]);
  const char *labels[] = {o->version ? o->version : "unknown", NULL};
  fl_metrics_set(s->metrics_reg, "freightliner_build_info", labels, 1);
  fl_metrics_add(s->metrics_reg, "freightliner_auth_failures_total", NULL, 0);
  fl_metrics_add(s->metrics_reg, "freightliner_auth_lockouts_total", NULL, 0);
  if (o->audit_path) {
    s->audit_fd =
        open(o->audit_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->audit_fd < 0) {
      fl_error_set(err, FL_EIO, "cannot open the audit log %s", o->audit_path);
      goto fail;
    }
  }
  if (pthread_create(&s->reaper, NULL, reaper, s) != 0) {
    fl_error_set(err, FL_ENOMEM, "cannot start a thread");
    goto fail;
  }
  s->reaper_started = 1;
  s->main = listen_on(s, o, o->listen, on_main, err);
  if (!s->main)
    goto fail;
  if (o->metrics_listen) {
    s->metrics = listen_on(s, o, o->metrics_listen, on_metrics, err);
    if (!s->metrics)
      goto fail;
  }
  return s;
fail:
  fl_server_free(s);
  return NULL;
}

int fl_server_port(fl_server *s, int which) {
  struct MHD_Daemon *d = which ? s->metrics : s->main;
  if (!d)
    return 0;
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  return di ? di->port : 0;
}

void fl_server_free(fl_server *s) {
  if (!s)
    return;
  if (s->main)
    MHD_stop_daemon(s->main);
  if (s->metrics)
    MHD_stop_daemon(s->metrics);
  atomic_store(&s->stopping, 1);
  if (s->reaper_started)
    pthread_join(s->reaper, NULL);
  fl_notify_free(s->notify); /* before the metrics it counts in */
  fl_probe_free(s->probe);
  if (s->audit_fd >= 0)
    close(s->audit_fd);
  fl_jobs_free(s->jobs);
  fl_metrics_free(s->metrics_reg);
  fl_auth_free(s->auth);
  json_decref(s->syncs);
  for (size_t i = 0; i < s->ncors; i++)
    free(s->cors[i]);
  free(s->cors);
  free(s->watches);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->wmu);
  free(s);
}

fl_jobs *fl_server_jobs(fl_server *s) { return s->jobs; }
fl_metrics *fl_server_metrics(fl_server *s) { return s->metrics_reg; }
fl_auth *fl_server_auth(fl_server *s) { return s->auth; }
fl_notify *fl_server_notify(fl_server *s) { return s->notify; }
fl_probe *fl_server_probe(fl_server *s) { return s->probe; }

void fl_server_set_ready(fl_server *s, int ready, const char *reason) {
  pthread_mutex_lock(&s->mu);
  s->ready = ready;
  snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
  pthread_mutex_unlock(&s->mu);
}

int fl_server_set_syncs(fl_server *s, json_t *syncs) {
  json_t *copy = json_deep_copy(syncs);
  if (!json_is_array(copy)) {
    json_decref(copy);
    return -1;
  }
  pthread_mutex_lock(&s->mu);
  json_t *old = s->syncs;
  s->syncs = copy;
  pthread_mutex_unlock(&s->mu);
  json_decref(old);
  return 0;
}
