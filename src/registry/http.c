/*
 * http.c - one registry's HTTP client (see http.h).
 *
 * A request goes through, in order: its cancel token, the circuit breaker,
 * the concurrency and rate limits, one curl transfer on a pooled easy
 * handle, then the decision what to do with the answer: re-authenticate once
 * on 401 (the state machine is http_auth.c's), retry transport failures and
 * 408/429/5xx with backoff, or return it. Scheme detection for loopback hosts (https, then plain http) happens
 * on the first request. Nothing here raises or logs secrets.
 *
 * Cancellation is scoped: a request stops (in on_progress and in every
 * sleep) when its token is set: req->cancel, or else the calling thread's
 * current token (core/cancel.h), which the engine sets to the job's. A
 * request that is not streamed has a deadline (request_timeout, all tries
 * and waits included) and a cap per try (attempt_timeout); a Retry-After
 * longer than retry_after_max ends it as RATE_LIMITED.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/cancel.h"
#include "core/defaults.h"
#include "core/log.h"
#include "registry/auth.h"
#include "registry/http.h"
#include "registry/http_internal.h"
#include "registry/reference.h"

#define DEFAULT_MAX_BODY (64 * 1024)
#define USER_AGENT "freightliner/" FL_VERSION

/* ---- small utilities ---------------------------------------------------- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Sleep, stopping early (FL_ECANCELLED) when the token is set. */
fl_code fl_http_sleep_ms(long long ms, const fl_cancel *tok, fl_error *err) {
  return fl_cancel_sleep_ms(tok, ms, err);
}

/* The token a request stops on: its own, else the thread's current one. */
static fl_cancel *request_token(const fl_http_request *req) {
  return req->cancel ? req->cancel : fl_cancel_current();
}

void fl_http_count_retry(void) { fl_cancel_count_retry(fl_cancel_current()); }

/* ---- curl share locks and the handle pool -------------------------------- */

static void share_lock(CURL *handle, curl_lock_data data,
                       curl_lock_access access, void *userptr) {
  (void)handle;
  (void)access;
  fl_http *h = userptr;
  pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr) {
  (void)handle;
  fl_http *h = userptr;
  pthread_mutex_unlock(&h->share_locks[data]);
}

static CURL *pool_get(fl_http *h) {
  CURL *c = NULL;
  pthread_mutex_lock(&h->pool_lock);
  if (h->pool_len > 0)
    c = h->pool[--h->pool_len];
  pthread_mutex_unlock(&h->pool_lock);
  if (c)
    curl_easy_reset(c); /* keeps its connections and caches */
  else
    c = curl_easy_init();
  return c;
}

static void pool_put(fl_http *h, CURL *c) {
  pthread_mutex_lock(&h->pool_lock);
  if (h->pool_len < POOL_MAX) {
    h->pool[h->pool_len++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&h->pool_lock);
  if (c)
    curl_easy_cleanup(c);
}

/* ---- construction -------------------------------------------------------- */

static void set_defaults(fl_http_config *c) {
  if (c->max_attempts < 1)
    c->max_attempts = FL_DEFAULT_MAX_ATTEMPTS;
  if (c->retry_base_ms <= 0)
    c->retry_base_ms = FL_DEFAULT_RETRY_BASE_MS;
  if (c->retry_max_ms <= 0)
    c->retry_max_ms = FL_DEFAULT_RETRY_MAX_MS;
  if (c->retry_after_max_s <= 0)
    c->retry_after_max_s = FL_DEFAULT_RETRY_AFTER_MAX_S;
  if (c->request_timeout_s <= 0)
    c->request_timeout_s = FL_DEFAULT_REQUEST_TIMEOUT_S;
  if (c->attempt_timeout_s <= 0)
    c->attempt_timeout_s = FL_DEFAULT_ATTEMPT_TIMEOUT_S;
  if (c->breaker_threshold <= 0)
    c->breaker_threshold = FL_DEFAULT_BREAKER_THRESHOLD;
  if (c->breaker_cooldown_s <= 0)
    c->breaker_cooldown_s = FL_DEFAULT_BREAKER_COOLDOWN_S;
  if (c->connect_timeout_ms <= 0)
    c->connect_timeout_ms = FL_DEFAULT_CONNECT_TIMEOUT_MS;
  if (c->low_speed_time_s <= 0)
    c->low_speed_time_s = FL_DEFAULT_LOW_SPEED_TIME_S;
}

static void set_base(fl_http *h, int scheme) {
  atomic_store(&h->scheme, scheme);
  snprintf(h->base, sizeof h->base, "%s://%s",
           scheme == FL_SCHEME_HTTP ? "http" : "https", h->host);
}

fl_code fl_http_new(const fl_http_config *cfg, fl_http **out, fl_error *err) {
  *out = NULL;
  if (!cfg->host || !*cfg->host || strlen(cfg->host) > 255)
    return fl_error_set(err, FL_EINVALID, "registry host is empty or too long");
  fl_http *h = calloc(1, sizeof *h);
  if (!h)
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  h->cfg = *cfg;
  set_defaults(&h->cfg);
  h->host = strdup(cfg->host);
  h->ca_file = dup_or_null(cfg->ca_file);
  h->client_cert = dup_or_null(cfg->client_cert);
  h->client_key = dup_or_null(cfg->client_key);
  h->pinned_pubkey = dup_or_null(cfg->pinned_pubkey);
  h->cred_username = dup_or_null(cfg->creds.username);
  h->cred_password_env = dup_or_null(cfg->creds.password_env);
  h->cred_password_file = dup_or_null(cfg->creds.password_file);
  h->cred_helper = dup_or_null(cfg->creds.credential_helper);
  h->cfg.realm_origins = NULL; /* the caller's strings: copied below */
  size_t nro = 0;
  while (cfg->realm_origins && cfg->realm_origins[nro])
    nro++;
  h->realm_origins = calloc(nro + 1, sizeof *h->realm_origins);
  int copied = h->realm_origins != NULL;
  for (size_t i = 0; copied && i < nro; i++)
    copied = (h->realm_origins[i] = strdup(cfg->realm_origins[i])) != NULL;
  /* every string asked for was copied (a NULL here is a failed strdup) */
  copied = copied && (!cfg->ca_file || h->ca_file) &&
           (!cfg->client_cert || h->client_cert) &&
           (!cfg->client_key || h->client_key) &&
           (!cfg->pinned_pubkey || h->pinned_pubkey) &&
           (!cfg->creds.username || h->cred_username) &&
           (!cfg->creds.password_env || h->cred_password_env) &&
           (!cfg->creds.password_file || h->cred_password_file) &&
           (!cfg->creds.credential_helper || h->cred_helper);
  h->loopback = fl_host_is_loopback(cfg->host);
  h->scheme_fixed = cfg->scheme != FL_SCHEME_AUTO;
  set_base(h, cfg->scheme == FL_SCHEME_HTTP ? FL_SCHEME_HTTP : FL_SCHEME_HTTPS);
  pthread_mutex_init(&h->pool_lock, NULL);
  pthread_mutex_init(&h->scheme_lock, NULL);
  pthread_mutex_init(&h->auth_lock, NULL);
  pthread_mutex_init(&h->limit_lock, NULL);
  pthread_cond_init(&h->limit_cond, NULL);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&h->share_locks[i], NULL);
  atomic_store(&h->rl_limit, -1);
  atomic_store(&h->rl_remaining, -1);
  atomic_store(&h->rl_window, -1);
  clock_gettime(CLOCK_MONOTONIC, &h->bucket_at);
  h->bucket_tokens = 1;
  h->tokens = fl_token_cache_new();
  h->share = curl_share_init();
  if (!h->host || !h->tokens || !h->share || !copied) {
    fl_http_free(h);
    return fl_error_set(err, FL_ENOMEM, "out of memory");
  }
  curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
  curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  if (!h->cfg.tls_verify && cfg->scheme != FL_SCHEME_HTTP)
    fl_log(FL_LOG_WARN, NULL,
           "TLS verification is off for %s: its identity is not checked",
           h->host);
  *out = h;
  return FL_OK;
}

void fl_http_free(fl_http *h) {
  if (!h)
    return;
  for (int i = 0; i < h->pool_len; i++)
    curl_easy_cleanup(h->pool[i]);
  if (h->share)
    curl_share_cleanup(h->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&h->share_locks[i]);
  pthread_mutex_destroy(&h->pool_lock);
  pthread_mutex_destroy(&h->scheme_lock);
  pthread_mutex_destroy(&h->auth_lock);
  pthread_mutex_destroy(&h->limit_lock);
  pthread_cond_destroy(&h->limit_cond);
  fl_token_cache_free(h->tokens);
  fl_credentials_clear(&h->creds);
  if (h->basic_header) {
    OPENSSL_cleanse(h->basic_header, strlen(h->basic_header));
    free(h->basic_header);
  }
  free(h->host);
  free(h->ca_file);
  free(h->client_cert);
  free(h->client_key);
  free(h->pinned_pubkey);
  free(h->cred_username);
  free(h->cred_password_env);
  free(h->cred_password_file);
  free(h->cred_helper);
  for (size_t i = 0; h->realm_origins && h->realm_origins[i]; i++)
    free(h->realm_origins[i]);
  free(h->realm_origins);
  free(h);
}

const char *fl_http_base(fl_http *h) { return h->base; }
const char *fl_http_host(fl_http *h) { return h->host; }

void fl_http_get_stats(fl_http *h, fl_http_stats *out) {
  out->requests = atomic_load(&h->n_requests);
  out->retries = atomic_load(&h->n_retries);
  out->reauths = atomic_load(&h->n_reauths);
  out->ratelimit_limit = atomic_load(&h->rl_limit);
  out->ratelimit_remaining = atomic_load(&h->rl_remaining);
  out->ratelimit_window = atomic_load(&h->rl_window);
  out->breaker_open = atomic_load(&h->breaker_open_until) > now_ms();
}

/* ---- limits and the circuit breaker --------------------------------------- */

static void limits_acquire(fl_http *h) {
  if (h->cfg.max_concurrency <= 0 && h->cfg.requests_per_second <= 0)
    return;
  pthread_mutex_lock(&h->limit_lock);
  while (h->cfg.max_concurrency > 0 && h->inflight >= h->cfg.max_concurrency)
    pthread_cond_wait(&h->limit_cond, &h->limit_lock);
  h->inflight++;
  double wait_s = 0;
  if (h->cfg.requests_per_second > 0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (double)(now.tv_sec - h->bucket_at.tv_sec) +
                     (double)(now.tv_nsec - h->bucket_at.tv_nsec) / 1e9;
    double burst =
        h->cfg.requests_per_second < 1 ? 1 : h->cfg.requests_per_second;
    h->bucket_tokens += elapsed * h->cfg.requests_per_second;
    if (h->bucket_tokens > burst)
      h->bucket_tokens = burst;
    h->bucket_at = now;
    h->bucket_tokens -= 1;
    if (h->bucket_tokens < 0)
      wait_s = -h->bucket_tokens / h->cfg.requests_per_second;
  }
  pthread_mutex_unlock(&h->limit_lock);
  if (wait_s > 0)
    fl_http_sleep_ms((long long)(wait_s * 1000), fl_cancel_current(), NULL);
}

static void limits_release(fl_http *h) {
  if (h->cfg.max_concurrency <= 0 && h->cfg.requests_per_second <= 0)
    return;
  pthread_mutex_lock(&h->limit_lock);
  h->inflight--;
  pthread_cond_signal(&h->limit_cond);
  pthread_mutex_unlock(&h->limit_lock);
}

static fl_code breaker_check(fl_http *h, fl_error *err) {
  long long until = atomic_load(&h->breaker_open_until);
  long long now = now_ms();
  if (until > now)
    return fl_error_set(err, FL_EUNREACHABLE,
                        "registry %s is marked down after %d consecutive "
                        "failures; not trying again for %lld s",
                        h->host, atomic_load(&h->consecutive_failures),
                        (until - now + 999) / 1000);
  return FL_OK;
}

static void breaker_record(fl_http *h, int ok) {
  if (ok) {
    atomic_store(&h->consecutive_failures, 0);
    atomic_store(&h->breaker_open_until, 0);
    return;
  }
  int n = atomic_fetch_add(&h->consecutive_failures, 1) + 1;
  if (n >= h->cfg.breaker_threshold) {
    atomic_store(&h->breaker_open_until,
                 now_ms() + (long long)h->cfg.breaker_cooldown_s * 1000);
    fl_log(FL_LOG_WARN, NULL,
           "registry %s failed %d times in a row: marking it down for %d s",
           h->host, n, h->cfg.breaker_cooldown_s);
  }
}

/* ---- one transfer ---------------------------------------------------------- */

typedef struct transfer {
  fl_http *h;
  const fl_http_request *req;
  fl_http_response *resp;
  fl_error *err;
  const fl_cancel *cancel; /* the request's token */
  fl_code cb_rc;           /* error raised by a callback */
  uint64_t sent;
  size_t max_body;
  size_t body_cap;
  long retry_after_s;
} transfer;

static void response_reset(fl_http_response *r) {
  uint64_t streamed = r->streamed;
  fl_http_response_clear(r);
  r->streamed = streamed;
}

void fl_http_response_clear(fl_http_response *r) {
  free(r->body);
  free(r->location);
  free(r->content_type);
  free(r->docker_digest);
  free(r->link);
  free(r->range);
  free(r->www_authenticate);
  memset(r, 0, sizeof *r);
  r->content_length = UINT64_MAX;
}

/* Store a header value (trimmed) into *slot, replacing an older one; 0
 * when out of memory. */
static int keep_header(char **slot, const char *v, size_t n) {
  while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
    n--;
  while (n && (*v == ' ' || *v == '\t')) {
    v++;
    n--;
  }
  free(*slot);
  *slot = strndup(v, n);
  return *slot != NULL;
}

static int header_is(const char *line, size_t n, const char *name,
                     const char **value, size_t *vlen) {
  size_t l = strlen(name);
  if (n <= l || line[l] != ':' || strncasecmp(line, name, l) != 0)
    return 0;
  *value = line + l + 1;
  *vlen = n - l - 1;
  return 1;
}

static long parse_retry_after(const char *v, size_t n) {
  char buf[64];
  if (n >= sizeof buf)
    return -1;
  memcpy(buf, v, n);
  buf[n] = '\0';
  char *end;
  long s = strtol(buf, &end, 10);
  if (end != buf && (*end == '\0' || *end == '\r' || *end == ' '))
    return s < 0 ? 0 : s;
  time_t when = curl_getdate(buf, NULL);
  if (when < 0)
    return -1;
  long d = (long)(when - time(NULL));
  return d < 0 ? 0 : d;
}

/* Docker Hub states its window with the count: "100;w=21600" (seconds). */
static void ratelimit_window(fl_http *h, const char *v, size_t vl) {
  for (size_t i = 0; i + 2 < vl; i++)
    if (v[i] == ';' && v[i + 1] == 'w' && v[i + 2] == '=') {
      atomic_store(&h->rl_window, strtol(v + i + 3, NULL, 10));
      return;
    }
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
  transfer *t = ud;
  size_t n = size * nmemb;
  fl_http_response *r = t->resp;
  const char *v = NULL;
  size_t vl = 0;
  char **slot = NULL; /* a header kept in the response */
  if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* a new response (after 100 Continue or a redirect): start over */
    response_reset(r);
    t->retry_after_s = -1;
    const char *sp = memchr(line, ' ', n);
    r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
  } else if (header_is(line, n, "location", &v, &vl)) {
    slot = &r->location;
  } else if (header_is(line, n, "content-type", &v, &vl)) {
    slot = &r->content_type;
  } else if (header_is(line, n, "docker-content-digest", &v, &vl)) {
    slot = &r->docker_digest;
  } else if (header_is(line, n, "link", &v, &vl)) {
    slot = &r->link;
  } else if (header_is(line, n, "range", &v, &vl)) {
    slot = &r->range;
  } else if (header_is(line, n, "www-authenticate", &v, &vl)) {
    slot = &r->www_authenticate;
  } else if (header_is(line, n, "content-length", &v, &vl)) {
    r->content_length = strtoull(v, NULL, 10);
  } else if (header_is(line, n, "retry-after", &v, &vl)) {
    while (vl && (*v == ' ')) {
      v++;
      vl--;
    }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
      vl--;
    t->retry_after_s = parse_retry_after(v, vl);
  } else if (header_is(line, n, "ratelimit-remaining", &v, &vl)) {
    atomic_store(&t->h->rl_remaining, strtol(v, NULL, 10));
    ratelimit_window(t->h, v, vl);
  } else if (header_is(line, n, "ratelimit-limit", &v, &vl)) {
    atomic_store(&t->h->rl_limit, strtol(v, NULL, 10));
    ratelimit_window(t->h, v, vl);
  }
  if (slot && !keep_header(slot, v, vl)) {
    t->cb_rc =
        fl_error_set(t->err, FL_ENOMEM,
                     "out of memory reading the headers from %s", t->h->host);
    return 0;
  }
  return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  transfer *t = ud;
  size_t n = size * nmemb;
  fl_http_response *r = t->resp;
  if (t->req->sink && r->status >= 200 && r->status < 300) {
    t->cb_rc = t->req->sink->write(t->req->sink->ud, data, n, t->err);
    if (t->cb_rc != FL_OK)
      return 0;
    r->streamed += n;
    return n;
  }
  if (r->body_len + n > t->max_body) {
    t->cb_rc = fl_error_set(t->err, FL_ETOO_LARGE,
                            "response from %s is over %zu bytes", t->h->host,
                            t->max_body);
    return 0;
  }
  if (r->body_len + n + 1 > t->body_cap) {
    size_t cap = t->body_cap ? t->body_cap : 4096;
    while (cap < r->body_len + n + 1)
      cap *= 2;
    char *b = realloc(r->body, cap);
    if (!b) {
      t->cb_rc = fl_error_set(t->err, FL_ENOMEM, "out of memory");
      return 0;
    }
    r->body = b;
    t->body_cap = cap;
  }
  memcpy(r->body + r->body_len, data, n);
  r->body_len += n;
  r->body[r->body_len] = '\0';
  return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud) {
  transfer *t = ud;
  fl_source *src = t->req->source;
  long long n = src->read(src->ud, buf, size * nmemb, t->err);
  if (n < 0) {
    t->cb_rc = t->err ? t->err->code : FL_EIO;
    return CURL_READFUNC_ABORT;
  }
  t->sent += (uint64_t)n;
  return (size_t)n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un) {
  transfer *t = ud;
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  return !t->req->cleanup && fl_cancel_is_set(t->cancel) ? 1 : 0;
}

static int is_tls_error(CURLcode c) {
  switch (c) {
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_USE_SSL_FAILED:
    return 1;
  default:
    return 0;
  }
}

/* Map a curl failure; *retryable says whether trying again may help. */
static fl_code curl_failure(fl_http *h, CURLcode c, const char *url,
                            const char *detail, int *retryable, fl_error *err) {
  const char *why = detail && *detail ? detail : curl_easy_strerror(c);
  *retryable = 0;
  switch (c) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    *retryable = 1;
    return fl_error_set(err, FL_EUNREACHABLE,
                        "cannot reach registry %s: host name not found (%s)",
                        h->host, why);
  case CURLE_COULDNT_CONNECT:
    *retryable = 1;
    return fl_error_set(err, FL_EUNREACHABLE,
                        "cannot connect to registry %s (%s): %s", h->host, url,
                        why);
  case CURLE_OPERATION_TIMEDOUT:
    *retryable = 1;
    return fl_error_set(err, FL_ETIMEOUT,
                        "request to %s timed out or stalled: %s", url, why);
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    *retryable = 1;
    return fl_error_set(err, FL_EUNREACHABLE,
                        "connection to %s failed during the request (%s): %s",
                        h->host, url, why);
  case CURLE_ABORTED_BY_CALLBACK:
    return fl_error_set(err, FL_ECANCELLED,
                        "interrupted: request to %s cancelled", h->host);
  default:
    break;
  }
  if (is_tls_error(c))
    return fl_error_set(err, FL_ETLS,
                        "TLS failure talking to %s: %s (give the registry's "
                        "CA with ca_file, or turn verification off "
                        "explicitly with tls_verify=false)",
                        h->host, why);
  return fl_error_set(err, FL_EPROTOCOL, "request to %s failed: %s", url, why);
}

static void set_tls_options(fl_http *h, CURL *c) {
  curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  if (h->ca_file)
    curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
  if (h->client_cert)
    curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert);
  if (h->client_key)
    curl_easy_setopt(c, CURLOPT_SSLKEY, h->client_key);
  if (h->pinned_pubkey)
    curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, h->pinned_pubkey);
  if (!h->cfg.tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

/* Perform one HTTP transfer. FL_OK: resp holds a response. */

/* Append a header line; on failure the list stays as it was and *nomem is
 * set (curl_slist_append returns NULL then, which would lose the list). */
static struct curl_slist *add_header(struct curl_slist *l, const char *line,
                                     int *nomem) {
  struct curl_slist *n = *nomem ? NULL : curl_slist_append(l, line);
  if (!n) {
    *nomem = 1;
    return l;
  }
  return n;
}

fl_code fl_http_perform_once(fl_http *h, const fl_http_request *req,
                             const char *url, const char *auth,
                             fl_http_response *resp, fl_http_outcome *oc,
                             fl_error *err) {
  transfer t = {.h = h,
                .req = req,
                .resp = resp,
                .err = err,
                .cancel = request_token(req),
                .retry_after_s = -1};
  t.max_body = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  fl_code rc = FL_OK;
  oc->retryable = 0;
  oc->retry_after = -1;
  uint64_t streamed = resp->streamed;
  fl_http_response_clear(resp);
  resp->streamed = streamed;

  CURL *c = pool_get(h);
  if (!c)
    return fl_error_set(err, FL_ENOMEM, "cannot create a curl handle");
  int nomem = 0;
  if (auth) {
    char line[8300];
    snprintf(line, sizeof line, "Authorization: %s", auth);
    headers = add_header(headers, line, &nomem);
    OPENSSL_cleanse(line, sizeof line);
  }
  for (const char *const *hd = req->headers; hd && *hd; hd++)
    headers = add_header(headers, *hd, &nomem);
  headers = add_header(headers, "Expect:", &nomem);
  if (nomem) {
    /* never send a request without the headers it was meant to carry */
    curl_slist_free_all(headers);
    pool_put(h, c);
    return fl_error_set(err, FL_ENOMEM, "out of memory building a request");
  }

  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
  curl_easy_setopt(c, CURLOPT_SHARE, h->share);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->cfg.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->cfg.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 64L * 1024);
  curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 64L * 1024);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  if (req->cleanup)
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  else
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, oc->timeout_ms); /* 0: none */
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  set_tls_options(h, c);

  const char *m = req->method ? req->method : "GET";
  if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req->source) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->source_len);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
  } else if (strcmp(m, "GET") != 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
  }

  atomic_fetch_add(&h->n_requests, 1);
  long long started = now_ms();
  CURLcode cc = curl_easy_perform(c);
  if (cc != CURLE_OK) {
    if (t.cb_rc != FL_OK)
      rc = t.cb_rc; /* our sink or source stopped it: keep its error */
    else
      rc = curl_failure(h, cc, url, errbuf, &oc->retryable, err);
    if (cc == CURLE_OPERATION_TIMEDOUT && oc->timeout_ms > 0 &&
        now_ms() - started >= oc->timeout_ms - 10 && !req->cleanup)
      fl_error_set(err, FL_ETIMEOUT,
                   "request to %s took longer than %s (%ld s)", url,
                   oc->timeout_name ? oc->timeout_name : "its time limit",
                   (oc->timeout_ms + 999) / 1000);
  }
  if (fl_log_enabled(FL_LOG_DEBUG))
    fl_log(FL_LOG_DEBUG, NULL, "%s %s -> %ld (%lld ms)%s%s", m, url,
           rc == FL_OK ? resp->status : 0L, now_ms() - started,
           auth ? " [Authorization: <redacted>]" : "",
           rc == FL_OK ? "" : " failed");
  if (rc == FL_OK)
    oc->retry_after = t.retry_after_s;
  curl_slist_free_all(headers);
  pool_put(h, c);
  return rc;
}

/* ---- the request loop ------------------------------------------------------ */

static int status_retryable(long s) {
  return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static fl_code rewind_body(const fl_http_request *req, fl_error *err) {
  if (!req->source)
    return FL_OK;
  if (!req->source->rewind)
    return FL_EUNSUPPORTED;
  return req->source->rewind(req->source->ud, err);
}

/* The wait before try attempt+1: Retry-After when the server sent one,
 * else exponential backoff with full jitter (core/cancel.h). */
static long long backoff_ms(fl_http *h, int attempt, long retry_after_s) {
  if (retry_after_s >= 0)
    return retry_after_s * 1000LL;
  return fl_backoff_ms(attempt, h->cfg.retry_base_ms, h->cfg.retry_max_ms);
}

/* The time limit of the next try of a request with a deadline. */
static void limit_try(fl_http *h, long long deadline, fl_http_outcome *oc) {
  long long left = deadline - now_ms();
  long per_try = h->cfg.attempt_timeout_s * 1000L;
  oc->timeout_ms = left < per_try ? (long)(left > 1 ? left : 1) : per_try;
  oc->timeout_name = left < per_try ? "request_timeout" : "attempt_timeout";
}

/* How long to wait before try attempt+1 (*wait), or the error that ends
 * the request: a Retry-After over retry_after_max (RATE_LIMITED, naming
 * the time asked for), a wait past the deadline (TIMEOUT, naming it;
 * deadline 0: none). status: the last answer's, 0 for none. */
static fl_code retry_wait(fl_http *h, const fl_http_request *req,
                          const fl_http_outcome *oc, long status, int attempt,
                          long long deadline, long long *wait, fl_error *err) {
  const char *m = req->method ? req->method : "GET";
  if (oc->retry_after > h->cfg.retry_after_max_s)
    return fl_error_set(err, FL_ERATE_LIMITED,
                        "registry %s answered %ld and asked to wait %ld s "
                        "(Retry-After) before %s %s, longer than "
                        "retry_after_max (%d s)",
                        h->host, status, oc->retry_after, m, req->url,
                        h->cfg.retry_after_max_s);
  *wait = backoff_ms(h, attempt, oc->retry_after);
  if (deadline && now_ms() + *wait >= deadline)
    return fl_error_set(err, FL_ETIMEOUT,
                        "%s %s to registry %s did not succeed within "
                        "request_timeout (%d s) after %d tries",
                        m, req->url, h->host, h->cfg.request_timeout_s,
                        attempt);
  return FL_OK;
}

static void make_url(fl_http *h, const char *url, char *out, size_t n) {
  if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
    snprintf(out, n, "%s", url);
  else
    snprintf(out, n, "%s%s", h->base, url);
}

/* Loopback registries may speak plain HTTP (as Docker allows). The first
 * request to such a host probes plain HTTP (cheap: no TLS set-up) and
 * settles on https unless a registry answered: a TLS server answers a plain
 * request with 400 or drops it, and no registry answers GET /v2/ with 400.
 * A dropped probe is ambiguous (a flaky link drops too): then https is
 * probed, and if neither answers, both again after a backoff, up to
 * max_attempts rounds. Other threads wait for the answer; after it the base
 * URL never changes. */
static int probe(fl_http *h, const char *scheme, long *status) {
  fl_http_request req = {.method = "GET", .url = "/v2/"};
  fl_http_response resp;
  fl_error err;
  fl_http_outcome oc = {.timeout_ms = h->cfg.attempt_timeout_s * 1000L,
                        .timeout_name = "attempt_timeout"};
  char url[400];
  memset(&resp, 0, sizeof resp);
  snprintf(url, sizeof url, "%s://%s/v2/", scheme, h->host);
  fl_code rc = fl_http_perform_once(h, &req, url, NULL, &resp, &oc, &err);
  *status = rc == FL_OK ? resp.status : 0;
  fl_http_response_clear(&resp);
  return rc == FL_OK;
}

static void ensure_scheme(fl_http *h) {
  if (atomic_load(&h->scheme_resolved))
    return;
  pthread_mutex_lock(&h->scheme_lock);
  if (!atomic_load(&h->scheme_resolved)) {
    if (!h->scheme_fixed && h->loopback) {
      int plain = 0;
      long status = 0;
      for (int round = 1; round <= h->cfg.max_attempts; round++) {
        if (probe(h, "http", &status)) {
          plain = status != 400 && status > 0;
          break;
        }
        if (probe(h, "https", &status) || fl_cancel_is_set(fl_cancel_current()))
          break; /* TLS answered: https */
        if (round < h->cfg.max_attempts &&
            fl_http_sleep_ms(
                fl_backoff_ms(round, h->cfg.retry_base_ms, h->cfg.retry_max_ms),
                fl_cancel_current(), NULL) != FL_OK)
          break;
      }
      set_base(h, plain ? FL_SCHEME_HTTP : FL_SCHEME_HTTPS);
      fl_log(FL_LOG_DEBUG, NULL, "%s: loopback registry speaks %s", h->host,
             plain ? "plain HTTP" : "TLS");
    }
    atomic_store(&h->scheme_resolved, 1);
  }
  pthread_mutex_unlock(&h->scheme_lock);
}

fl_origin_verdict fl_http_origin(fl_http *h, const char *url) {
  ensure_scheme(h);
  return fl_origin_compare(h->base, url);
}

/* Where a request may go (the origin rule, origin.h): *foreign is set for
 * another origin (no credentials go there); a downgrade to plain HTTP and
 * anything that is not an http(s) URL are refused. `what` says whence the
 * URL came ("redirect", "URL"). */
static fl_code check_origin(fl_http *h, const char *url, const char *what,
                            int *foreign, fl_error *err) {
  fl_origin_verdict v = fl_origin_compare(h->base, url);
  char o[FL_ORIGIN_MAX];
  if (v == FL_ORIGIN_SAME || v == FL_ORIGIN_OTHER) {
    *foreign = v == FL_ORIGIN_OTHER;
    return FL_OK;
  }
  if (!fl_origin_of(url, o, sizeof o))
    snprintf(o, sizeof o, "%.200s", url);
  return fl_error_set(err, FL_EPROTOCOL,
                      "registry %s: refusing a %s to %s: %s (an HTTPS "
                      "registry never continues over plain HTTP)",
                      h->host, what, o, fl_origin_verdict_text(v));
}

static int is_redirect(long s) {
  return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

/* Follow the redirect in resp from url (rewritten in place, n bytes): at
 * most 5, each through the origin rule (credentials for this registry never
 * go to another origin, and an HTTPS registry never continues over plain
 * HTTP; *foreign says whether the new URL is on another origin). */
static fl_code follow_redirect(fl_http *h, const fl_http_request *req,
                               const fl_http_response *resp, char *url,
                               size_t n, int *redirects, int *foreign,
                               fl_error *err) {
  char next[4096];
  if (++*redirects > 5)
    return fl_error_set(err, FL_EPROTOCOL, "too many redirects from %s",
                        req->url);
  if (fl_http_resolve_url(url, resp->location, next, sizeof next) != FL_OK)
    return fl_error_set(err, FL_EPROTOCOL, "bad redirect location from %s",
                        h->host);
  snprintf(url, n, "%s", next);
  return check_origin(h, url, "redirect", foreign, err);
}

/* A 401 to a request that carried `auth`: one transparent
 * re-authentication (the first forgets a cached token that may have
 * expired). FL_OK: send it again; else the response is cleared (no
 * response for the caller) and the error returned. */
static fl_code reauthenticate(fl_http *h, const fl_http_request *req,
                              fl_http_response *resp, const char *auth,
                              int reauthed, fl_error *err) {
  if (reauthed == 0)
    fl_http_auth_forget(h, req, auth);
  else
    atomic_fetch_add(&h->n_reauths, 1);
  fl_code rc = fl_http_auth_challenge(h, req, resp, auth, err);
  if (rc != FL_OK)
    fl_http_response_clear(resp);
  return rc;
}

fl_code fl_http_do(fl_http *h, const fl_http_request *req,
                   fl_http_response *resp, fl_error *err) {
  char url[4096];
  fl_code rc = FL_OK;
  int reauthed = 0;
  int attempt = 0;
  memset(resp, 0, sizeof *resp);
  resp->content_length = UINT64_MAX;
  fl_cancel *tok = request_token(req);
  if (!req->cleanup && fl_cancel_is_set(tok))
    return fl_error_set(err, FL_ECANCELLED, "cancelled");
  /* A streamed body (a blob) is bounded by the stall check only; anything
   * else by the request deadline and the cap per try. */
  int bounded = !req->sink && !req->source && !req->cleanup;
  long long deadline =
      bounded ? now_ms() + h->cfg.request_timeout_s * 1000LL : 0;
  if ((rc = breaker_check(h, err)) != FL_OK)
    return rc;
  ensure_scheme(h);
  make_url(h, req->url, url, sizeof url);

  int redirects = 0;
  int foreign = 0; /* a URL on another origin (origin.h): no auth */
  if ((rc = check_origin(h, url, "URL", &foreign, err)) != FL_OK)
    return rc;
  for (;;) {
    char *auth = (foreign || req->no_auth) ? NULL : fl_http_auth_cached(h, req);
    fl_http_outcome oc = {0};
    if (deadline)
      limit_try(h, deadline, &oc);
    limits_acquire(h);
    rc = fl_http_perform_once(h, req, url, auth, resp, &oc, err);
    limits_release(h);

    if (rc == FL_OK && req->follow_redirects && resp->location &&
        is_redirect(resp->status)) {
      free(auth);
      rc = follow_redirect(h, req, resp, url, sizeof url, &redirects, &foreign,
                           err);
      if (rc != FL_OK)
        break;
      continue;
    }
    if (rc == FL_OK && resp->status == 401 && reauthed < 2 && !foreign &&
        !req->no_auth) {
      rc = reauthenticate(h, req, resp, auth, reauthed++, err);
      free(auth);
      if (rc != FL_OK || rewind_body(req, err) != FL_OK)
        break;
      continue;
    }
    free(auth);
    int again = (rc != FL_OK && oc.retryable) ||
                (rc == FL_OK && status_retryable(resp->status));
    if (!again || req->cleanup || ++attempt >= h->cfg.max_attempts)
      break;
    if (req->sink && resp->streamed > 0 && req->stream_no_retry)
      break;
    long long wait = 0;
    fl_code wrc = retry_wait(h, req, &oc, rc == FL_OK ? resp->status : 0,
                             attempt, deadline, &wait, err);
    if (wrc != FL_OK) {
      rc = wrc; /* the response is cleared below */
      break;
    }
    if (rewind_body(req, err) != FL_OK) {
      /* the body was streamed and cannot be produced again: the caller
       * starts over (a blob upload: the engine's next attempt), but not
       * before the wait the server asked for */
      if (oc.retry_after > 0)
        fl_http_sleep_ms(oc.retry_after * 1000LL, tok, NULL);
      break;
    }
    atomic_fetch_add(&h->n_retries, 1);
    fl_cancel_count_retry(tok);
    fl_log(FL_LOG_DEBUG, NULL, "retrying %s %s in %lld ms (attempt %d of %d)",
           req->method ? req->method : "GET", url, wait, attempt + 1,
           h->cfg.max_attempts);
    if ((rc = fl_http_sleep_ms(wait, tok, err)) != FL_OK)
      break;
  }
  int transport_ok = rc == FL_OK && resp->status < 500;
  if (rc == FL_OK || rc == FL_EUNREACHABLE || rc == FL_ETIMEOUT)
    breaker_record(h, transport_ok);
  if (rc != FL_OK)
    fl_http_response_clear(resp); /* no response for the caller: none kept */
  return rc;
}

/* ---- URLs ------------------------------------------------------------------ */

fl_code fl_http_resolve_url(const char *base, const char *ref, char *out,
                            size_t n) {
  fl_code rc = FL_EINVALID;
  char *s = NULL;
  CURLU *u = curl_url();
  if (!u)
    return FL_ENOMEM;
  if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK && strlen(s) < n) {
    memcpy(out, s, strlen(s) + 1);
    rc = FL_OK;
  }
  curl_free(s);
  curl_url_cleanup(u);
  return rc;
}

int fl_http_link_next(const char *link, const char *current, char *out,
                      size_t n) {
  const char *p = link;
  while (p && *p) {
    const char *lt = strchr(p, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    if (!gt)
      return 0;
    const char *end = strchr(gt, ',');
    size_t plen = end ? (size_t)(end - gt) : strlen(gt);
    /* rel="next" or rel=next among the parameters of this link */
    int is_next = 0;
    for (const char *q = gt; q + 3 < gt + plen; q++) {
      if (strncasecmp(q, "rel=", 4) == 0) {
        const char *v = q + 4;
        if (*v == '"')
          v++;
        is_next = strncasecmp(v, "next", 4) == 0 &&
                  (v[4] == '"' || v[4] == ';' || v[4] == ',' || v[4] == ' ' ||
                   v[4] == '\0');
        break;
      }
    }
    if (is_next) {
      char ref[4096];
      size_t ul = (size_t)(gt - lt - 1);
      if (ul == 0 || ul >= sizeof ref)
        return 0;
      memcpy(ref, lt + 1, ul);
      ref[ul] = '\0';
      return fl_http_resolve_url(current, ref, out, n) == FL_OK;
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}
