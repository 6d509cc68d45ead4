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

#include "registry/credentials.h"
#include "registry/endpoint.h"

typedef struct fl_http_config {
  const char *host; /* "127.0.0.1:5000", "registry-1.docker.io" */
  int scheme;       /* FL_SCHEME_* */
  int tls_verify;   /* 1 unless explicitly disabled */
  const char *ca_file;
  const char *client_cert;
  const char *client_key;
  const char *pinned_pubkey;  /* "sha256//base64" as libcurl takes it */
  int max_attempts;           /* per request, >= 1; default 5 */
  double retry_base_ms;       /* first backoff cap; default 200 ms */
  double retry_max_ms;        /* backoff cap; default 20 s */
  int max_concurrency;        /* requests in flight; 0 = no limit */
  double requests_per_second; /* token bucket; 0 = no limit */
  int breaker_threshold;      /* consecutive failures; default 5 */
  int breaker_cooldown_s;     /* default 30 */
  long connect_timeout_ms;    /* default 15000 */
  long low_speed_time_s; /* abort below 1 KiB/s for this long; default 60 */
  fl_cred_settings creds;
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

/* Turn a non-2xx response into an error: 401 UNAUTHORIZED, 403 DENIED, 404
 * NOT_FOUND, 429 RATE_LIMITED, 5xx SERVER, else PROTOCOL; the message says
 * `what` failed and includes the registry's own error code and message. */
fl_code fl_http_status_error(fl_http *h, const fl_http_response *resp,
                             const char *what, fl_error *err);

/* The URL of the next page from a Link header (`<url>; rel="next"`),
 * resolved against `current`; 0 when there is none. */
int fl_http_link_next(const char *link, const char *current, char *out,
                      size_t n);

/* Resolve a possibly relative URL (a Location header) against `base`. */
fl_code fl_http_resolve_url(const char *base, const char *ref, char *out,
                            size_t n);

/* The base URL ("https://host") after scheme detection, and the host. */
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

/* Cancel: every request in progress or started later fails with
 * FL_ECANCELLED (used on SIGINT/SIGTERM). Process-wide. */
void fl_http_cancel_all(void);
int fl_http_cancelled(void);
/* Retries made by every client in this process: HTTP requests sent again,
 * blob downloads resumed, blob copies tried again. */
uint64_t fl_http_total_retries(void);
void fl_http_count_retry(void);

#endif
