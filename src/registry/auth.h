/*
 * auth.h - registry authentication without the HTTP: challenges, token
 * requests and responses, the token cache, header redaction.
 *
 * A registry that wants credentials answers 401 with a WWW-Authenticate
 * header (RFC 7235): "Basic realm=..." (send the credentials on every
 * request) or "Bearer realm=...,service=...,scope=..." (fetch a token from
 * the realm, the Docker token protocol, then send "Bearer TOKEN"). This
 * module parses the challenges, builds the token request (GET with Basic
 * for a username and password or anonymously, POST of an OAuth2
 * refresh-token form for an identity token), parses the token response and
 * caches tokens per (registry, scope, identity) until shortly before they
 * expire. Every function is pure or locks its own state; the HTTP client
 * (http.c) performs the requests.
 */
#ifndef FL_REGISTRY_AUTH_H
#define FL_REGISTRY_AUTH_H

#include <stddef.h>
#include <time.h>

#include "freightliner.h"
#include "registry/credentials.h"

/* ---- challenges ---------------------------------------------------------- */

/* One challenge of a WWW-Authenticate header. Unknown parameters are
 * ignored; absent ones are "". */
typedef struct fl_challenge {
  char scheme[16]; /* lower-cased: "bearer", "basic", or another scheme */
  char realm[1024];
  char service[256];
  char scope[1024]; /* as sent: may hold several scopes, space-separated */
  char error[64];   /* "invalid_token", "insufficient_scope", ... */
} fl_challenge;

/* Parse a WWW-Authenticate header value (RFC 7235: challenges separated by
 * commas, each a scheme then a token68 or auth-params; parameter values are
 * tokens or quoted strings with backslash escapes; scheme and parameter
 * names are case-insensitive; empty list elements are allowed). Stores up to
 * max challenges in order and returns how many. A challenge that is
 * malformed, has a control character in a value, or has a value or scheme
 * name too long for its field is skipped (never truncated); parsing resumes
 * at the next challenge when one can be found. NULL header or max <= 0: 0. */
int fl_auth_parse_challenges(const char *header, fl_challenge *out, int max);

/* "repository:REPO:ACTIONS" (actions: "pull", "pull,push", "delete", "*").
 * snprintf semantics: returns the full length; buf may be NULL when n is 0;
 * output truncated and NUL-terminated when n is too small. */
size_t fl_auth_scope(char *buf, size_t n, const char *repo,
                     const char *actions);

/* ---- token requests and responses ------------------------------------- */

/* The request that fetches a bearer token. Free with fl_token_request_clear
 * (the body and authorization hold secrets and are wiped). */
typedef struct fl_token_request {
  char *url; /* absolute; GET: realm plus query, POST: the realm */
  /* NULL for GET; for POST an application/x-www-form-urlencoded body */
  char *body;
  char *authorization; /* NULL or "Basic base64(user:pass)": a header value */
  int is_post;
} fl_token_request;

/* Build the token request for a "bearer" challenge. The scopes are
 * scopes[0..nscopes) (empty and NULL entries skipped) followed by those in
 * the challenge's own scope parameter not already asked for. cred may be
 * NULL (anonymous).
 *  - anonymous: GET realm?service=S&scope=A&scope=B
 *  - username and password (both non-empty): the same GET plus
 *    &account=USER, with authorization "Basic base64(user:pass)"
 *  - identity token: POST to the realm of grant_type=refresh_token&
 *    refresh_token=T&service=S&scope=A%20B&client_id=freightliner (the
 *    OAuth2 form takes the scopes space-separated in one parameter)
 * Query values are percent-encoded; the query is appended with '?' or, when
 * the realm already has one, '&'; a fragment in the realm is dropped. A
 * username without a password is anonymous, as in Docker.
 * FL_EINVALID if the challenge is not bearer or cred is a registry token
 * (fl_credentials_is_bearer: use it directly, no request); FL_EPROTOCOL if
 * the realm is empty or not an http(s) URL; FL_ENOMEM. On error *req is
 * zeroed. */
fl_code fl_token_request_build(const fl_challenge *ch,
                               const char *const *scopes, size_t nscopes,
                               const fl_credentials *cred,
                               fl_token_request *req, fl_error *err);

void fl_token_request_clear(fl_token_request *req);

typedef struct fl_token {
  char *token;         /* the bearer token */
  char *refresh_token; /* NULL unless the server sent one */
  long expires_in;     /* seconds; 60 if absent or < 60, per the Docker spec */
} fl_token;

/* Parse a token endpoint's JSON body: "token" or "access_token" (token
 * preferred when both are non-empty), "expires_in", "refresh_token";
 * "issued_at" and anything else are ignored. FL_EPROTOCOL for malformed
 * JSON, a non-object, a missing or empty token, or a token with characters
 * that cannot go in an HTTP header; the message names the problem and never
 * includes token text. On error *out is zeroed. Free with fl_token_clear. */
fl_code fl_token_response_parse(const char *body, size_t len, fl_token *out,
                                fl_error *err);

void fl_token_clear(fl_token *t);

/* ---- the token cache ----------------------------------------------------- */

#define FL_TOKEN_CACHE_MAX 256

/* Bearer tokens keyed by a string (see fl_token_cache_key). Thread-safe. An
 * entry is fresh until put time + expires_in - margin, the margin being 10%
 * of expires_in but at least 5 s. At most FL_TOKEN_CACHE_MAX entries: a put
 * of a new key into a full cache drops an expired entry, else the one put
 * longest ago. Tokens are wiped when dropped. */
typedef struct fl_token_cache fl_token_cache;

fl_token_cache *fl_token_cache_new(void); /* NULL on allocation failure */
void fl_token_cache_free(fl_token_cache *c);

/* The key for (registry host, scope, identity): identity is
 * fl_credentials_identity() of the credentials used, "" for anonymous. Each
 * part is length-prefixed so distinct triples never collide. snprintf
 * semantics. */
size_t fl_token_cache_key(char *buf, size_t n, const char *host,
                          const char *scope, const char *identity);

/* 1 and the token copied into tok when a fresh token is cached under key;
 * 0 when none is, it has expired (the entry is dropped), or it does not fit
 * in n bytes (tok is then ""). */
int fl_token_cache_get(fl_token_cache *c, const char *key, char *tok, size_t n);

/* Store (or replace) the token under key. */
void fl_token_cache_put(fl_token_cache *c, const char *key, const char *tok,
                        long expires_in);

/* Drop the entry for key (a 401 with a cached token: re-authenticate once). */
void fl_token_cache_invalidate(fl_token_cache *c, const char *key);

/* Replace the clock (default: CLOCK_MONOTONIC seconds). NULL restores it.
 * For tests. */
void fl_token_cache_set_clock(fl_token_cache *c, time_t (*now)(void));

/* ---- logging ------------------------------------------------------------- */

/* Copy one header line for a debug log with its credentials removed:
 * "Authorization: Bearer xyz" -> "Authorization: Bearer <redacted>", the
 * same for Basic or any other scheme and for Proxy-Authorization (header
 * names matched without regard to case; a value without a scheme becomes
 * "<redacted>"; a trailing CR/LF is kept). Any other line is copied
 * unchanged. Truncated and NUL-terminated to n bytes; nothing is written
 * when n is 0. */
void fl_auth_redact(const char *header_line, char *out, size_t n);

#endif /* FL_REGISTRY_AUTH_H */
