/*
 * http_auth.c - the authentication state machine of one registry's HTTP
 * client: where the credentials come from (and obtaining them again when a
 * registry refuses them), the Basic header, bearer tokens per scope (fetched
 * from the realm a challenge names, checked by the origin rule, cached),
 * and what a 401 means for the request that got it. http.c calls the three
 * entry points declared in http_internal.h; nothing here logs a secret.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/cancel.h"
#include "core/log.h"
#include "registry/auth.h"
#include "registry/credentials.h"
#include "registry/http.h"
#include "registry/http_internal.h"
#include "registry/origin.h"

/* "Basic base64(user:password)", malloc'ed; NULL on allocation failure. */
static char *basic_header(const char *user, const char *password) {
  size_t plain_len = strlen(user) + 1 + strlen(password);
  char *plain = malloc(plain_len + 1);
  char *out = malloc(6 + 4 * ((plain_len + 2) / 3) + 1);
  if (plain && out) {
    snprintf(plain, plain_len + 1, "%s:%s", user, password);
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain,
                    (int)plain_len);
  } else {
    free(out);
    out = NULL;
  }
  if (plain) {
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
  }
  return out;
}

static fl_code load_credentials(fl_http *h) {
  if (h->creds_loaded)
    return h->creds_rc;
  fl_cred_settings s = {h->cred_username, h->cred_password_env,
                        h->cred_password_file, h->cred_helper};
  int any =
      s.username || s.password_env || s.password_file || s.credential_helper;
  h->creds_rc =
      fl_credentials_lookup(h->host, any ? &s : NULL, &h->creds, &h->creds_err);
  h->creds_loaded = 1;
  if (h->creds_rc == FL_OK)
    fl_log(FL_LOG_DEBUG, NULL, "credentials for %s from %s", h->host,
           h->creds.source);
  return h->creds_rc;
}

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Locked. The credentials in use were refused: obtain them again (run the
 * helper, read the password file or the Docker config once more), as a
 * rotated password or an expired ECR token needs. 1 when that gave
 * different credentials (worth one more try), 0 otherwise. Called once per
 * refusal, never per request. */
static int refresh_credentials(fl_http *h) {
  if (!h->creds_loaded || h->creds_rc != FL_OK)
    return 0;
  fl_credentials old = h->creds;
  memset(&h->creds, 0, sizeof h->creds);
  h->creds_loaded = 0;
  load_credentials(h);
  int changed = h->creds_rc == FL_OK &&
                !(same_str(old.username, h->creds.username) &&
                  same_str(old.password, h->creds.password) &&
                  same_str(old.identity_token, h->creds.identity_token) &&
                  same_str(old.registry_token, h->creds.registry_token));
  fl_log(FL_LOG_INFO, NULL,
         "registry %s refused the credentials from %s; obtained them again "
         "(%s)",
         h->host, old.source,
         h->creds_rc != FL_OK ? "failed"
         : changed            ? "they changed"
                              : "unchanged");
  fl_credentials_clear(&old);
  if (changed) {
    free(h->basic_header);
    h->basic_header = NULL;
  }
  return changed;
}

static void scope_key(fl_http *h, const char *const *scopes, size_t n,
                      char *key, size_t keyn) {
  size_t at = (size_t)snprintf(key, keyn, "%s|%s", h->host,
                               h->creds.username ? h->creds.username : "");
  for (size_t i = 0; i < n && at < keyn; i++)
    at += (size_t)snprintf(key + at, keyn - at, "|%s", scopes[i]);
}

/* The scopes a request needs; the token request adds the challenge's own. */
static int build_scopes(const fl_http_request *req, char bufs[2][1100],
                        const char *scopes[2]) {
  int n = 0;
  if (req->repo) {
    fl_auth_scope(bufs[n], sizeof bufs[n], req->repo,
                  req->actions ? req->actions : "pull");
    scopes[n] = bufs[n];
    n++;
  }
  if (req->extra_scope) {
    snprintf(bufs[n], sizeof bufs[n], "%s", req->extra_scope);
    scopes[n] = bufs[n];
    n++;
  }
  return n;
}

/* The Authorization value to send before any challenge, or NULL. */
char *fl_http_auth_cached(fl_http *h, const fl_http_request *req) {
  char bufs[2][1100];
  const char *scopes[2];
  char key[2048], tok[8192];
  char *out = NULL;
  pthread_mutex_lock(&h->auth_lock);
  if (h->basic_header) {
    out = strdup(h->basic_header);
  } else {
    int n = build_scopes(req, bufs, scopes);
    scope_key(h, scopes, (size_t)n, key, sizeof key);
    if (fl_token_cache_get(h->tokens, key, tok, sizeof tok)) {
      size_t l = strlen(tok) + 8;
      out = malloc(l);
      if (out)
        snprintf(out, l, "Bearer %s", tok);
    }
  }
  pthread_mutex_unlock(&h->auth_lock);
  return out;
}

/* The origin rule for a token realm (origin.h, fl_http_config): the
 * registry's own origin and any origin the user listed are fine; plain HTTP
 * from an HTTPS registry and non-http(s) URLs are refused; another origin
 * is refused only in strict mode (Docker sends credentials there). */
static fl_code check_realm(fl_http *h, const char *realm, fl_error *err) {
  fl_origin_verdict v = fl_origin_compare(h->base, realm);
  char o[FL_ORIGIN_MAX];
  if (v == FL_ORIGIN_SAME)
    return FL_OK;
  for (size_t i = 0; h->realm_origins[i]; i++)
    if (fl_origin_matches(h->realm_origins[i], realm))
      return FL_OK;
  if (!fl_origin_of(realm, o, sizeof o))
    snprintf(o, sizeof o, "%s", "(unparsable)");
  if (v == FL_ORIGIN_DOWNGRADE)
    return fl_error_set(err, FL_EPROTOCOL,
                        "registry %s sent a plain-HTTP token service (%s); "
                        "refusing to send credentials there in clear text "
                        "(list it in auth_realms to allow it)",
                        h->host, o);
  if (v == FL_ORIGIN_INVALID)
    return fl_error_set(err, FL_EPROTOCOL,
                        "registry %s sent a token realm that is not an "
                        "http(s) URL",
                        h->host);
  if (h->cfg.realm_strict)
    return fl_error_set(err, FL_EDENIED,
                        "registry %s sent token service %s, on another "
                        "origin: auth_realm_strict refuses it (list the "
                        "origin in auth_realms to trust it)",
                        h->host, o);
  return FL_OK;
}

static fl_code fetch_token(fl_http *h, const fl_challenge *ch,
                           const char *const *scopes, size_t nscopes,
                           fl_token *tok, fl_error *err) {
  fl_token_request treq;
  fl_http_response tresp;
  fl_code rc;
  fl_http_outcome oc = {.timeout_ms = h->cfg.attempt_timeout_s * 1000L,
                        .timeout_name = "attempt_timeout"};
  memset(&tresp, 0, sizeof tresp);
  const fl_credentials *cred = h->creds_rc == FL_OK ? &h->creds : NULL;
  if ((rc = check_realm(h, ch->realm, err)) != FL_OK)
    return rc;
  rc = fl_token_request_build(ch, scopes, nscopes, cred, &treq, err);
  if (rc != FL_OK)
    return rc;
  const char *form_header[] = {
      "Content-Type: application/x-www-form-urlencoded", NULL};
  fl_http_request r = {.method = treq.is_post ? "POST" : "GET",
                       .url = treq.url,
                       .body = treq.body,
                       .body_len = treq.body ? strlen(treq.body) : 0,
                       .headers = treq.is_post ? form_header : NULL};
  for (int attempt = 0; attempt < 3; attempt++) {
    rc = fl_http_perform_once(h, &r, treq.url, treq.authorization, &tresp, &oc,
                              err);
    if (rc == FL_OK && tresp.status < 500)
      break;
    if (rc != FL_OK && !oc.retryable)
      break;
    if (fl_http_sleep_ms(fl_backoff_ms(attempt + 1, h->cfg.retry_base_ms,
                                       h->cfg.retry_max_ms),
                         fl_cancel_current(), err) != FL_OK) {
      rc = FL_ECANCELLED;
      break;
    }
  }
  if (rc != FL_OK) {
    fl_error_prefix(err, "getting a token from %s: ", ch->realm);
    goto out;
  }
  if (tresp.status == 401 || tresp.status == 403) {
    rc = fl_error_set(err, FL_EUNAUTHORIZED,
                      "registry %s refused the credentials%s%s (token "
                      "service %s answered %ld)",
                      h->host, cred ? " from " : "",
                      cred ? h->creds.source : " (none were found)", ch->realm,
                      tresp.status);
    goto out;
  }
  if (tresp.status != 200) {
    rc = fl_error_set(err, FL_EPROTOCOL, "token service %s answered HTTP %ld",
                      ch->realm, tresp.status);
    goto out;
  }
  rc = fl_token_response_parse(tresp.body, tresp.body_len, tok, err);
  if (rc == FL_OK && strlen(tok->token) > TOKEN_MAX) {
    rc = fl_error_set(err, FL_ETOO_LARGE,
                      "token service %s sent a %zu-byte token, over the "
                      "%d-byte limit for a bearer token",
                      ch->realm, strlen(tok->token), TOKEN_MAX);
    fl_token_clear(tok);
  }
out:
  fl_token_request_clear(&treq);
  fl_http_response_clear(&tresp);
  return rc;
}

/* React to a 401: fetch a token or set Basic. FL_OK means retry. */
/* The bearer token cached for a request's scopes, "" if none (locked). */
static void cached_token_locked(fl_http *h, const fl_http_request *req,
                                char *tok, size_t n) {
  char bufs[2][1100];
  const char *scopes[2];
  char key[2048];
  int ns = build_scopes(req, bufs, scopes);
  scope_key(h, scopes, (size_t)ns, key, sizeof key);
  if (!fl_token_cache_get(h->tokens, key, tok, n))
    tok[0] = '\0';
}

/* 1 if `sent` (an Authorization value or NULL) is "Bearer <tok>". */
static int sent_this_token(const char *sent, const char *tok) {
  return sent && strncmp(sent, "Bearer ", 7) == 0 && strcmp(sent + 7, tok) == 0;
}

/* Locked. The Basic credentials a request carried were refused: obtain
 * them again once. FL_OK when they changed (worth another try; the caller
 * builds the new header), else the error to report. */
static fl_code basic_refused(fl_http *h, fl_error *err) {
  char source[sizeof h->creds.source];
  snprintf(source, sizeof source, "%s", h->creds.source);
  if (!refresh_credentials(h)) {
    if (h->creds_rc != FL_OK) {
      *err = h->creds_err;
      return h->creds_rc;
    }
    return fl_error_set(err, FL_EUNAUTHORIZED,
                        "registry %s refused the username and password "
                        "from %s",
                        h->host, source);
  }
  if (!h->creds.username || !h->creds.password)
    return fl_error_set(err, FL_EUNAUTHORIZED,
                        "registry %s refused the credentials from %s, and "
                        "%s now has no username and password",
                        h->host, source, h->creds.source);
  return FL_OK;
}

/* React to a 401 on a request that carried `sent_auth` (or none): fetch a
 * token or set Basic credentials. FL_OK means: send it again. */
fl_code fl_http_auth_challenge(fl_http *h, const fl_http_request *req,
                               const fl_http_response *resp,
                               const char *sent_auth, fl_error *err) {
  int sent_basic = sent_auth && strncmp(sent_auth, "Basic ", 6) == 0;
  fl_challenge ch[4];
  int n = resp->www_authenticate
              ? fl_auth_parse_challenges(resp->www_authenticate, ch, 4)
              : 0;
  fl_code rc = FL_OK;
  pthread_mutex_lock(&h->auth_lock);
  fl_code crc = load_credentials(h);
  if (crc != FL_OK && crc != FL_ENOT_FOUND) {
    *err = h->creds_err;
    rc = crc;
    goto out;
  }
  int have = crc == FL_OK;
  for (int i = 0; i < n; i++) {
    if (strcmp(ch[i].scheme, "bearer") == 0 && ch[i].realm[0]) {
      char bufs[2][1100];
      const char *scopes[2];
      int ns = build_scopes(req, bufs, scopes);
      fl_token tok;
      memset(&tok, 0, sizeof tok);
      char current[8192];
      cached_token_locked(h, req, current, sizeof current);
      if (current[0] && !sent_this_token(sent_auth, current))
        goto out; /* another thread fetched a fresh token: use that */
      if (have && fl_credentials_is_bearer(&h->creds)) {
        /* docker config `registrytoken`: already a bearer token */
        tok.token = strdup(h->creds.registry_token);
        tok.expires_in = 3600;
        rc = tok.token ? FL_OK : fl_error_set(err, FL_ENOMEM, "out of memory");
      } else {
        rc = fetch_token(h, &ch[i], scopes, (size_t)ns, &tok, err);
        /* the token service refused the credentials: obtain them again,
         * once, and ask again if they changed */
        if (rc == FL_EUNAUTHORIZED && have && refresh_credentials(h))
          rc = fetch_token(h, &ch[i], scopes, (size_t)ns, &tok, err);
      }
      if (rc == FL_OK) {
        char key[2048];
        /* cache under the key fl_http_auth_cached() will look up */
        scope_key(h, scopes, (size_t)ns, key, sizeof key);
        fl_token_cache_put(h->tokens, key, tok.token, tok.expires_in);
      }
      fl_token_clear(&tok);
      goto out;
    }
  }
  for (int i = 0; i < n; i++) {
    if (strcmp(ch[i].scheme, "basic") == 0) {
      if (!have || !h->creds.username || !h->creds.password) {
        rc = fl_error_set(err, FL_EUNAUTHORIZED,
                          "registry %s needs a username and password and "
                          "none were found (docker login, a credential "
                          "helper, or password_env in the config)",
                          h->host);
        goto out;
      }
      if (sent_basic && h->basic_header &&
          strcmp(sent_auth, h->basic_header) != 0)
        goto out; /* another thread set new ones since: send those */
      /* this very request carried them, and they were refused */
      if (sent_basic && h->basic_header &&
          (rc = basic_refused(h, err)) != FL_OK)
        goto out;
      if (!h->basic_header) {
        h->basic_header = basic_header(h->creds.username, h->creds.password);
        if (!h->basic_header)
          rc = fl_error_set(err, FL_ENOMEM, "out of memory");
      }
      goto out;
    }
  }
  rc = fl_error_set(err, FL_EUNAUTHORIZED,
                    "registry %s answered 401 without a usable "
                    "WWW-Authenticate challenge",
                    h->host);
out:
  pthread_mutex_unlock(&h->auth_lock);
  return rc;
}

/* Forget the cached token for a request's scopes, but only if it is the
 * one that request sent (not a fresh one another thread just fetched). */
void fl_http_auth_forget(fl_http *h, const fl_http_request *req,
                         const char *sent_auth) {
  char bufs[2][1100];
  const char *scopes[2];
  char key[2048], tok[8192];
  pthread_mutex_lock(&h->auth_lock);
  int n = build_scopes(req, bufs, scopes);
  scope_key(h, scopes, (size_t)n, key, sizeof key);
  if (fl_token_cache_get(h->tokens, key, tok, sizeof tok) &&
      sent_this_token(sent_auth, tok))
    fl_token_cache_invalidate(h->tokens, key);
  pthread_mutex_unlock(&h->auth_lock);
}
