/*
 * http.h - one registry's HTTP client: libcurl with auth, retries and limits.
 *
 * An fl_http speaks to one registry host. It owns the things that must be
 * shared by every request to that host, from any thread: a pool of curl easy
 * handles (so connections are reused), a curl share of DNS and TLS sessions,
 * the credentials and the token cache, the retry policy (exponential backoff
 * with full jitter, honouring Retry-After), the per-registry limits
 * (concurrent requests, requests per second) and the circuit breaker that
 * fails fast with UNREACHABLE while the registry is down. fl_http_do runs
 * one logical request through all of that and returns the final response;
 * registry.c turns responses into Distribution API operations.
 */
#ifndef FL_REGISTRY_HTTP_H
#define FL_REGISTRY_HTTP_H

#include <stdint.h>

#include "core/cancel.h"
#include "registry/credentials.h"
#include "registry/endpoint.h"
#include "registry/origin.h"

typedef struct fl_http_config {
  const char *host; /* "127.0.0.1:5000", "registry-1.docker.io" */
  int scheme;       /* FL_SCHEME_* */
  int tls_verify;   /* 1 unless explicitly disabled */
  const char *ca_file;
  const char *client_cert;
  const char *client_key;
  const char *pinned_pubkey; /* "sha256//base64" as libcurl takes it */
  /* Zero fields take their defaults (core/defaults.h). */
  int max_attempts;           /* tries per request */
  double retry_base_ms;       /* first backoff cap */
  double retry_max_ms;        /* backoff cap */
  int retry_after_max_s;      /* a longer Retry-After fails RATE_LIMITED */
  int request_timeout_s;      /* one non-streamed request, tries and waits */
  int attempt_timeout_s;      /* one try of a non-streamed request */
  int max_concurrency;        /* requests in flight; 0 = no limit */
  double requests_per_second; /* token bucket; 0 = no limit */
  int breaker_threshold;      /* consecutive failures; default 5 */
  int breaker_cooldown_s;     /* default 30 */
  long connect_timeout_ms;    /* default 15000 */
  long low_speed_time_s; /* abort below 1 KiB/s for this long; default 60 */
  fl_cred_settings creds;
  /* Token realms (origin.h): a realm on another origin gets the
   * credentials, as Docker sends them, unless the registry is HTTPS and the
   * realm plain HTTP (always refused). realm_strict refuses every realm on
   * another origin that realm_origins (a NULL-terminated list of
   * "scheme://host[:port]", may be NULL) does not name. */
  int realm_strict;
  const char *const *realm_origins;
} fl_http_config;

enum {
  FL_SCHEME_AUTO = 0, /* https; loopback hosts fall back to http */
  FL_SCHEME_HTTPS,
  FL_SCHEME_HTTP /* asked for: http:// prefix or insecure setting */
};

typedef struct fl_http fl_http;

typedef struct fl_http_request {
  const char *method;      /* "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE" */
  const char *url;         /* "/v2/..." (joined to the base) or absolute */
  const char *repo;        /* repository for the token scope, NULL: none */
  const char *actions;     /* "pull", "pull,push", "delete", "*" */
  const char *extra_scope; /* another scope to ask for (mount's source) */
  const char *const *headers; /* extra headers, NULL-terminated, may be NULL */
  const void *body;           /* in-memory body (replayable) */
  size_t body_len;
  fl_source *source;    /* streamed body; replayable only if rewind works */
  uint64_t source_len;  /* its exact length */
  fl_sink *sink;        /* stream a 2xx response body here */
  size_t max_body;      /* cap for a buffered body; 0 = 64 KiB */
  int follow_redirects; /* follow 3xx (blobs): auth is dropped across hosts */
  int no_auth;          /* never send Authorization (token service) */
  int cleanup;          /* runs even after cancellation (closing an upload
                           session), once, without retries */
  int stream_no_retry;  /* do not retry once sink has received bytes */
  fl_cancel *cancel;    /* stop when set; NULL: the thread's current token */
} fl_http_request;

typedef struct fl_http_response {
  long status;
  char *body; /* buffered body (error bodies too), NUL-terminated */
  size_t body_len;
  char *location;
  char *content_type;
  char *docker_digest;
  char *link;
  char *range;
  char *www_authenticate;
  uint64_t content_length; /* UINT64_MAX when absent */
  uint64_t streamed;       /* bytes given to the sink */
} fl_http_response;

fl_code fl_http_new(const fl_http_config *cfg, fl_http **out, fl_error *err);
void fl_http_free(fl_http *h);

/* Run a request with auth, retries and limits. FL_OK means a final HTTP
 * response arrived (any status: check resp->status); other codes mean none
 * did (UNREACHABLE, TLS, TIMEOUT, CANCELLED, or the sink/source's error). */
fl_code fl_http_do(fl_http *h, const fl_http_request *req,
                   fl_http_response *resp, fl_error *err);
void fl_http_response_clear(fl_http_response *resp);

/* The registry's own account of an error: the Distribution error body
 * {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "...", "detail": ...}]}
 * parsed (http_error.c). Classification looks at codes, never at message
 * text. */
#define FL_REGISTRY_CODE_MAX 48
#define FL_REGISTRY_MESSAGE_MAX 200
#define FL_REGISTRY_CODES_MAX 8

typedef struct fl_registry_error {
  size_t count; /* entries in errors[] (may exceed the codes kept) */
  /* errors[i].code for the first FL_REGISTRY_CODES_MAX entries: upper-case
   * letters, digits and '_' only; "" where an entry had none or another */
  char codes[FL_REGISTRY_CODES_MAX][FL_REGISTRY_CODE_MAX];
  /* errors[0].message, cut to fit, control characters shown as '?' */
  char message[FL_REGISTRY_MESSAGE_MAX];
} fl_registry_error;

/* Parse an error body (any bytes: JSON or not, NUL-free or not). Returns 1
 * when it holds at least one error with a code or a message, else 0 with
 * *out empty. Never allocates beyond jansson's parse, never fails. */
int fl_registry_error_parse(const char *body, size_t len,
                            fl_registry_error *out);

/* 1 when e lists registry error code `code` ("DIGEST_INVALID"). */
int fl_registry_error_has(const fl_registry_error *e, const char *code);

/* Turn a non-2xx response into an error. The registry's error code decides
 * first where it says more than the status (DIGEST_INVALID is
 * DIGEST_MISMATCH, TOOMANYREQUESTS RATE_LIMITED); else 401 UNAUTHORIZED, 403
 * DENIED, 404 NOT_FOUND, 429 RATE_LIMITED, 5xx SERVER, the rest PROTOCOL.
 * The message says `what` failed and includes the registry's own code and
 * message. */
fl_code fl_http_status_error(fl_http *h, const fl_http_response *resp,
                             const char *what, fl_error *err);

/* The URL of the next page from a Link header (`<url>; rel="next"`),
 * resolved against `current`; 0 when there is none. */
int fl_http_link_next(const char *link, const char *current, char *out,
                      size_t n);

/* Resolve a possibly relative URL (a Location header) against `base`. */
fl_code fl_http_resolve_url(const char *base, const char *ref, char *out,
                            size_t n);

/* Judge a URL the registry handed over (Link, Location, redirect, realm)
 * against the registry's origin (origin.h), after scheme detection. */
fl_origin_verdict fl_http_origin(fl_http *h, const char *url);

/* The base URL ("https://host"), and the host. For a loopback registry the
 * scheme is settled by its first request: resolve against the base after
 * one (fl_http_origin settles it itself). */
const char *fl_http_base(fl_http *h);
const char *fl_http_host(fl_http *h);

/* Observed state, for counters and the Lua API. */
typedef struct fl_http_stats {
  uint64_t requests;
  uint64_t retries;
  uint64_t reauths;
  long ratelimit_limit;     /* Docker Hub ratelimit-limit, -1 if never seen */
  long ratelimit_remaining; /* ratelimit-remaining, -1 if never seen */
  long ratelimit_window;    /* its window in seconds (";w="), -1 if never */
  int breaker_open;
} fl_http_stats;
void fl_http_get_stats(fl_http *h, fl_http_stats *out);

/* Count a retry (a blob download or upload resumed) on the calling
 * thread's current token, so its job and engine report it. */
void fl_http_count_retry(void);

#endif
