/*
 * http_internal.h - what the two halves of one registry's HTTP client
 * share: the client's state (struct fl_http), one curl transfer and the
 * cancellable sleep (http.c), and the authentication state machine
 * (http_auth.c). Private to src/registry/http*.c; everything else uses
 * http.h.
 */
#ifndef FL_REGISTRY_HTTP_INTERNAL_H
#define FL_REGISTRY_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <curl/curl.h>

#include "core/cancel.h"
#include "registry/auth.h"
#include "registry/credentials.h"
#include "registry/http.h"

#define POOL_MAX 64
/* The longest bearer token sent (the token buffers below are one more). */
#define TOKEN_MAX 8191

struct fl_http {
  char *host;
  char base[300];
  atomic_int scheme; /* FL_SCHEME_HTTPS or FL_SCHEME_HTTP */
  int scheme_fixed;  /* the user chose; no fallback */
  atomic_int scheme_resolved;
  pthread_mutex_t scheme_lock; /* guards the one-time scheme probe */
  int loopback;
  fl_http_config cfg;
  char *ca_file, *client_cert, *client_key, *pinned_pubkey;
  char *cred_username, *cred_password_env, *cred_password_file, *cred_helper;
  char **realm_origins; /* NULL-terminated copy of cfg.realm_origins */

  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

  pthread_mutex_t pool_lock;
  CURL *pool[POOL_MAX];
  int pool_len;

  pthread_mutex_t auth_lock;
  int creds_loaded;
  fl_code creds_rc;
  fl_error creds_err;
  fl_credentials creds;
  char *basic_header; /* set once the registry asked for Basic */
  fl_token_cache *tokens;

  pthread_mutex_t limit_lock;
  pthread_cond_t limit_cond;
  int inflight;
  double bucket_tokens;
  struct timespec bucket_at;

  atomic_int consecutive_failures;
  atomic_llong breaker_open_until; /* monotonic ms */

  atomic_ullong n_requests, n_retries, n_reauths;
  atomic_long rl_limit, rl_remaining, rl_window;
};

/* How one try went, beyond its status: in and out of fl_http_perform_once. */
typedef struct fl_http_outcome {
  long timeout_ms;          /* in: cap on this try, 0 for none */
  const char *timeout_name; /* in: the limit that set it, for the error */
  int retryable;            /* a transport failure that trying again may fix */
  long retry_after;         /* seconds from Retry-After, -1 when absent */
} fl_http_outcome;

/* One curl transfer of req to url (absolute) with the Authorization `auth`
 * (NULL for none): the response in resp, how it went in oc. */
fl_code fl_http_perform_once(fl_http *h, const fl_http_request *req,
                             const char *url, const char *auth,
                             fl_http_response *resp, fl_http_outcome *oc,
                             fl_error *err);

/* Sleep ms milliseconds; FL_ECANCELLED as soon as tok is set. */
fl_code fl_http_sleep_ms(long long ms, const fl_cancel *tok, fl_error *err);

/* ---- http_auth.c ---------------------------------------------------------- */

/* The Authorization header to send with req, malloc'ed: the cached bearer
 * token of its scopes, else the Basic header once the registry asked for
 * it; NULL for none. */
char *fl_http_auth_cached(fl_http *h, const fl_http_request *req);

/* React to a 401 that answered req (which carried `sent`): fetch a token or
 * set Basic, obtaining the credentials again when they were refused. FL_OK
 * means: send the request again. */
fl_code fl_http_auth_challenge(fl_http *h, const fl_http_request *req,
                               const fl_http_response *resp,
                               const char *sent_auth, fl_error *err);

/* After a request was refused with the Authorization it carried: forget
 * that token (another thread may have fetched a newer one already). */
void fl_http_auth_forget(fl_http *h, const fl_http_request *req,
                         const char *sent_auth);

#endif
