/*
 * auth.c - WWW-Authenticate parsing, token requests and responses, the
 * token cache and header redaction (see auth.h).
 *
 * The challenge parser is a single forward scan over the header with no
 * allocation and no recursion: every step consumes at least one byte or
 * stops, values are written straight into the fixed fields and a value that
 * does not fit, or is malformed, marks its challenge bad, so arbitrary input
 * can neither overflow nor loop (it is a fuzzing target). Request bodies and
 * Authorization values hold secrets: the string builder wipes every buffer
 * it lets go of, and so do the clear functions.
 */
#include "registry/auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define CLIENT_ID "freightliner"
#define EXPIRES_DEFAULT 60L
#define EXPIRES_MAX (10L * 365 * 24 * 3600) /* clamp: no overflow in time_t */
#define MARGIN_MIN 5L

/* ---- character classes -------------------------------------------------- */

static int is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z');
}

/* RFC 7230 tchar */
static int is_tchar(unsigned char c) {
  return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 7235 token68, without the trailing '=' padding */
static int is_t68(unsigned char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
         c == '+' || c == '/';
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t'; }

static int is_ctl(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* A bare parameter value: a token, read leniently (registries have been seen
 * sending unquoted URLs): any visible ASCII but the list and quote
 * delimiters. */
static int is_bare_value(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != ',' && c != '"' && c != '\\';
}

static char lower(char c) {
  if (c >= 'A' && c <= 'Z')
    return (char)(c + ('a' - 'A'));
  return c;
}

static int ieq(const char *a, size_t alen, const char *lit) {
  size_t n = strlen(lit);
  if (alen != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lit[i])
      return 0;
  return 1;
}

/* ---- challenges ---------------------------------------------------------- */

static size_t span_len(const char *p, int (*cls)(unsigned char)) {
  size_t n = 0;
  while (cls((unsigned char)p[n]))
    n++;
  return n;
}

static const char *skip_ws(const char *p) {
  while (is_ws((unsigned char)*p))
    p++;
  return p;
}

static const char *skip_ws_commas(const char *p) {
  while (is_ws((unsigned char)*p) || *p == ',')
    p++;
  return p;
}

/* Skip the rest of a malformed list element: to the next comma outside a
 * quoted string, or the end. */
static const char *skip_element(const char *p) {
  int quoted = 0;
  for (; *p; p++) {
    if (quoted && *p == '\\' && p[1])
      p++;
    else if (*p == '"')
      quoted = !quoted;
    else if (*p == ',' && !quoted)
      break;
  }
  return p;
}

/* Where a parameter's value goes: NULL for parameters we ignore. */
static char *param_field(fl_challenge *ch, const char *name, size_t len,
                         size_t *cap) {
  if (ieq(name, len, "realm")) {
    *cap = sizeof ch->realm;
    return ch->realm;
  }
  if (ieq(name, len, "service")) {
    *cap = sizeof ch->service;
    return ch->service;
  }
  if (ieq(name, len, "scope")) {
    *cap = sizeof ch->scope;
    return ch->scope;
  }
  if (ieq(name, len, "error")) {
    *cap = sizeof ch->error;
    return ch->error;
  }
  *cap = 0;
  return NULL;
}

/* A quoted-string at p (p[0] == '"') into dst (NULL: validate only). Returns
 * the byte after the closing quote, or the end of input if there is none. */
static const char *parse_quoted(const char *p, char *dst, size_t cap,
                                int *bad) {
  size_t len = 0;
  for (p++; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1])
      p++;
    if (is_ctl((unsigned char)*p))
      *bad = 1;
    if (dst && len + 1 < cap)
      dst[len++] = *p;
    else if (dst)
      *bad = 1; /* too long: never truncate a realm or scope */
  }
  if (dst)
    dst[len] = '\0';
  if (*p != '"') {
    *bad = 1;
    return p;
  }
  return p + 1;
}

/* One auth-param at p: name BWS "=" BWS (token / quoted-string). */
static const char *parse_param(const char *p, fl_challenge *ch, int *bad) {
  size_t nlen = span_len(p, is_tchar);
  const char *name = p;
  if (nlen == 0)
    goto malformed;
  p = skip_ws(p + nlen);
  if (*p != '=')
    goto malformed;
  p = skip_ws(p + 1);
  size_t cap = 0;
  char *dst = param_field(ch, name, nlen, &cap);
  if (*p == '"')
    return parse_quoted(p, dst, cap, bad);
  size_t vlen = span_len(p, is_bare_value);
  if (vlen == 0)
    goto malformed;
  if (dst && vlen < cap) {
    memcpy(dst, p, vlen);
    dst[vlen] = '\0';
  } else if (dst) {
    *bad = 1;
  }
  return p + vlen;
malformed:
  *bad = 1;
  return skip_element(p);
}

/* Does p start an auth-param (token BWS "=") rather than a new challenge? */
static int starts_param(const char *p) {
  size_t n = span_len(p, is_tchar);
  return n > 0 && *skip_ws(p + n) == '=';
}

/* Everything after a challenge's scheme: nothing, a token68 or a list of
 * auth-params. Returns where the next challenge may start. */
static const char *parse_challenge_body(const char *p, fl_challenge *ch,
                                        int *bad) {
  if (!*p || *p == ',')
    return p;
  if (!is_ws((unsigned char)*p)) {
    *bad = 1;
    return skip_element(p);
  }
  p = skip_ws(p);
  if (!*p || *p == ',')
    return p;
  size_t t = span_len(p, is_t68);
  if (t > 0) {
    const char *q = p + t;
    while (*q == '=')
      q++;
    q = skip_ws(q);
    if (!*q || *q == ',')
      return q; /* token68: nothing a registry client needs from it */
  }
  for (;;) {
    p = skip_ws(parse_param(p, ch, bad));
    if (!*p)
      return p;
    if (*p != ',') {
      *bad = 1;
      p = skip_element(p);
      if (!*p)
        return p;
    }
    const char *next = skip_ws_commas(p);
    if (!*next || !starts_param(next))
      return next;
    p = next;
  }
}

int fl_auth_parse_challenges(const char *header, fl_challenge *out, int max) {
  int count = 0;
  if (!header || !out || max <= 0)
    return 0;
  const char *p = header;
  for (;;) {
    p = skip_ws_commas(p);
    if (!*p || count >= max)
      break;
    size_t slen = span_len(p, is_tchar);
    if (slen == 0) {
      p = skip_element(p);
      if (*p == ',')
        p++;
      continue;
    }
    fl_challenge ch;
    int bad = 0;
    memset(&ch, 0, sizeof ch);
    if (slen < sizeof ch.scheme) {
      for (size_t i = 0; i < slen; i++)
        ch.scheme[i] = lower(p[i]);
    } else {
      bad = 1;
    }
    p = parse_challenge_body(p + slen, &ch, &bad);
    if (!bad)
      out[count++] = ch;
  }
  return count;
}

size_t fl_auth_scope(char *buf, size_t n, const char *repo,
                     const char *actions) {
  int len = snprintf(buf, n, "repository:%s:%s", repo ? repo : "",
                     actions ? actions : "");
  return len < 0 ? 0 : (size_t)len;
}

/* ---- a string builder that never leaves a copy behind ------------------ */

typedef struct sbuf {
  char *p;
  size_t len;
  size_t cap;
  int oom;
} sbuf;

static void sb_free(sbuf *b) {
  if (b->p) {
    OPENSSL_cleanse(b->p, b->cap);
    free(b->p);
  }
  memset(b, 0, sizeof *b);
}

static void sb_putn(sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = malloc(cap); /* not realloc: the old block is wiped first */
    if (!p) {
      b->oom = 1;
      return;
    }
    if (b->p) {
      memcpy(p, b->p, b->len);
      OPENSSL_cleanse(b->p, b->cap);
      free(b->p);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void sb_encn(sbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      sb_putn(b, (const char *)&s[i], 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      sb_putn(b, e, 3);
    }
  }
}

static void sb_enc(sbuf *b, const char *s) { sb_encn(b, s, strlen(s)); }

/* Hand the built string over (NULL if allocation failed). */
static char *sb_take(sbuf *b) {
  char *p = b->oom ? NULL : b->p;
  if (!p && !b->oom) {
    p = calloc(1, 1);
    if (!p)
      b->oom = 1;
  }
  if (b->oom) {
    sb_free(b);
    return NULL;
  }
  memset(b, 0, sizeof *b);
  return p;
}

/* ---- token requests ------------------------------------------------------ */

static int has_prefix_ci(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  for (size_t i = 0; i < n; i++)
    if (lower(s[i]) != prefix[i])
      return 0;
  return 1;
}

/* Length of the realm without its fragment, or 0 if it is not an absolute
 * http(s) URL made of visible ASCII. */
static size_t realm_len(const char *realm) {
  size_t skip = 0;
  if (has_prefix_ci(realm, "https://"))
    skip = 8;
  else if (has_prefix_ci(realm, "http://"))
    skip = 7;
  else
    return 0;
  if (!realm[skip] || strchr("/?#", realm[skip]))
    return 0;
  size_t n = 0;
  for (; realm[n] && realm[n] != '#'; n++)
    if ((unsigned char)realm[n] <= 0x20 || (unsigned char)realm[n] >= 0x7f)
      return 0;
  return n;
}

/* The scopes to ask for: the caller's, then the challenge's own ones not
 * already asked for. Pointers into scopes[] and into split (a copy of the
 * challenge's scope split at spaces). Returns the count. */
static size_t collect_scopes(const char *const *scopes, size_t nscopes,
                             char *split, const char **list) {
  size_t count = 0;
  for (size_t i = 0; i < nscopes; i++) {
    const char *s = scopes ? scopes[i] : NULL;
    int dup = !s || !*s;
    for (size_t j = 0; j < count && !dup; j++)
      dup = strcmp(list[j], s) == 0;
    if (!dup)
      list[count++] = s;
  }
  char *save = NULL;
  for (char *s = strtok_r(split, " ", &save); s;
       s = strtok_r(NULL, " ", &save)) {
    int dup = 0;
    for (size_t j = 0; j < count && !dup; j++)
      dup = strcmp(list[j], s) == 0;
    if (!dup)
      list[count++] = s;
  }
  return count;
}

static int nonempty(const char *s) { return s && *s; }

/* "Basic " + base64(user ":" pass) */
static char *basic_header(const char *user, const char *pass) {
  sbuf plain = {0}, out = {0};
  sb_puts(&plain, user);
  sb_puts(&plain, ":");
  sb_puts(&plain, pass);
  if (plain.oom) {
    sb_free(&plain);
    return NULL;
  }
  size_t enc_len = 4 * ((plain.len + 2) / 3);
  unsigned char *enc = malloc(enc_len + 1);
  if (enc) {
    EVP_EncodeBlock(enc, (const unsigned char *)plain.p, (int)plain.len);
    sb_puts(&out, "Basic ");
    sb_putn(&out, (const char *)enc, enc_len);
    OPENSSL_cleanse(enc, enc_len + 1);
    free(enc);
  } else {
    out.oom = 1;
  }
  sb_free(&plain);
  return sb_take(&out);
}

static void build_get_url(sbuf *u, const char *realm, size_t rlen,
                          const char *service, const char **list, size_t n,
                          const char *account) {
  sb_putn(u, realm, rlen);
  const char *q = memchr(realm, '?', rlen);
  char sep = q ? '&' : '?';
  if (q && (realm[rlen - 1] == '?' || realm[rlen - 1] == '&'))
    sep = 0;
  if (*service) {
    if (sep)
      sb_putn(u, &sep, 1);
    sb_puts(u, "service=");
    sb_enc(u, service);
    sep = '&';
  }
  for (size_t i = 0; i < n; i++) {
    if (sep)
      sb_putn(u, &sep, 1);
    sb_puts(u, "scope=");
    sb_enc(u, list[i]);
    sep = '&';
  }
  if (account) {
    if (sep)
      sb_putn(u, &sep, 1);
    sb_puts(u, "account=");
    sb_enc(u, account);
  }
}

static void build_refresh_form(sbuf *b, const char *refresh,
                               const char *service, const char **list,
                               size_t n) {
  sb_puts(b, "grant_type=refresh_token&refresh_token=");
  sb_enc(b, refresh);
  if (*service) {
    sb_puts(b, "&service=");
    sb_enc(b, service);
  }
  if (n > 0) {
    sb_puts(b, "&scope=");
    for (size_t i = 0; i < n; i++) {
      if (i > 0)
        sb_puts(b, "%20");
      sb_enc(b, list[i]);
    }
  }
  sb_puts(b, "&client_id=" CLIENT_ID);
}

fl_code fl_token_request_build(const fl_challenge *ch,
                               const char *const *scopes, size_t nscopes,
                               const fl_credentials *cred,
                               fl_token_request *req, fl_error *err) {
  fl_code rc = FL_OK;
  char split[sizeof ch->scope];
  const char **list = NULL;
  sbuf url = {0}, body = {0};
  memset(req, 0, sizeof *req);
  if (!ch || strcmp(ch->scheme, "bearer") != 0)
    return fl_error_set(err, FL_EINVALID,
                        "a token request needs a bearer challenge, got "
                        "\"%s\"",
                        ch ? ch->scheme : "(none)");
  if (fl_credentials_is_bearer(cred))
    return fl_error_set(err, FL_EINVALID,
                        "credentials from %s are a registry token: send it "
                        "as the bearer token, no token request is needed",
                        cred->source);
  if (!ch->realm[0])
    return fl_error_set(err, FL_EPROTOCOL,
                        "the registry's bearer challenge has no realm");
  size_t rlen = realm_len(ch->realm);
  if (rlen == 0)
    return fl_error_set(err, FL_EPROTOCOL,
                        "the registry's token realm \"%.200s\" is not an "
                        "http(s) URL",
                        ch->realm);
  /* at most one scope per two bytes of the challenge's scope */
  list = malloc((nscopes + sizeof split / 2 + 1) * sizeof *list);
  if (!list) {
    rc = fl_error_set(err, FL_ENOMEM,
                      "out of memory building a token "
                      "request");
    goto out;
  }
  memcpy(split, ch->scope, sizeof split);
  split[sizeof split - 1] = '\0';
  size_t n = collect_scopes(scopes, nscopes, split, list);
  if (cred && nonempty(cred->identity_token)) {
    req->is_post = 1;
    sb_putn(&url, ch->realm, rlen);
    build_refresh_form(&body, cred->identity_token, ch->service, list, n);
    req->body = sb_take(&body);
    if (!req->body)
      goto oom;
  } else {
    int basic = cred && nonempty(cred->username) && nonempty(cred->password);
    build_get_url(&url, ch->realm, rlen, ch->service, list, n,
                  basic ? cred->username : NULL);
    if (basic &&
        !(req->authorization = basic_header(cred->username, cred->password)))
      goto oom;
  }
  req->url = sb_take(&url);
  if (!req->url)
    goto oom;
  goto out;
oom:
  fl_token_request_clear(req);
  rc = fl_error_set(err, FL_ENOMEM, "out of memory building a token request");
out:
  sb_free(&url);
  sb_free(&body);
  free(list);
  return rc;
}

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

void fl_token_request_clear(fl_token_request *req) {
  if (!req)
    return;
  free(req->url);
  free_secret(req->body);
  free_secret(req->authorization);
  memset(req, 0, sizeof *req);
}

/* ---- token responses ----------------------------------------------------- */

/* Wipe a string value jansson holds before it is freed. jansson allocates
 * string values on the heap, so the const can be cast away. */
static void wipe_json_string(json_t *v) {
  if (json_is_string(v))
    OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* Visible ASCII only: the token goes into an HTTP header as is. */
static int header_safe(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
      return 0;
  return 1;
}

static const char *nonempty_string(json_t *root, const char *key) {
  const char *s = json_string_value(json_object_get(root, key));
  return s && *s ? s : NULL;
}

fl_code fl_token_response_parse(const char *body, size_t len, fl_token *out,
                                fl_error *err) {
  fl_code rc = FL_OK;
  json_error_t je;
  json_t *root = NULL;
  memset(out, 0, sizeof *out);
  if (!body || len == 0)
    return fl_error_set(err, FL_EPROTOCOL, "the token response is empty");
  /* jansson's message quotes the text near the error: only say where. */
  root = json_loadb(body, len, JSON_DECODE_ANY, &je);
  if (!root)
    return fl_error_set(err, FL_EPROTOCOL,
                        "the token response is not valid JSON (line %d, "
                        "column %d)",
                        je.line, je.column);
  if (!json_is_object(root)) {
    rc = fl_error_set(err, FL_EPROTOCOL,
                      "the token response is not a JSON object");
    goto out;
  }
  const char *tok = nonempty_string(root, "token");
  if (!tok)
    tok = nonempty_string(root, "access_token");
  if (!tok) {
    rc = fl_error_set(err, FL_EPROTOCOL,
                      "the token response has no \"token\" or "
                      "\"access_token\" string");
    goto out;
  }
  if (!header_safe(tok)) {
    rc = fl_error_set(err, FL_EPROTOCOL,
                      "the token in the token response contains characters "
                      "that cannot be sent in an HTTP header");
    goto out;
  }
  const char *refresh = nonempty_string(root, "refresh_token");
  json_t *exp = json_object_get(root, "expires_in");
  double secs = json_is_number(exp) ? json_number_value(exp) : 0;
  out->expires_in = secs < EXPIRES_DEFAULT ? EXPIRES_DEFAULT
                    : secs > EXPIRES_MAX   ? EXPIRES_MAX
                                           : (long)secs;
  out->token = strdup(tok);
  out->refresh_token = refresh ? strdup(refresh) : NULL;
  if (!out->token || (refresh && !out->refresh_token)) {
    fl_token_clear(out);
    rc = fl_error_set(err, FL_ENOMEM, "out of memory reading a token");
  }
out:
  if (json_is_object(root)) {
    wipe_json_string(json_object_get(root, "token"));
    wipe_json_string(json_object_get(root, "access_token"));
    wipe_json_string(json_object_get(root, "refresh_token"));
  }
  json_decref(root);
  return rc;
}

void fl_token_clear(fl_token *t) {
  if (!t)
    return;
  free_secret(t->token);
  free_secret(t->refresh_token);
  memset(t, 0, sizeof *t);
}

/* ---- the token cache ----------------------------------------------------- */

typedef struct cache_entry {
  char *key;
  char *tok;
  time_t expires;         /* fresh while now < expires */
  unsigned long long seq; /* put order, for eviction */
} cache_entry;

struct fl_token_cache {
  pthread_mutex_t mu;
  time_t (*now)(void);
  unsigned long long seq;
  size_t count;
  cache_entry e[FL_TOKEN_CACHE_MAX];
};

static time_t monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

fl_token_cache *fl_token_cache_new(void) {
  fl_token_cache *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (pthread_mutex_init(&c->mu, NULL) != 0) {
    free(c);
    return NULL;
  }
  c->now = monotonic_now;
  return c;
}

static void entry_drop(fl_token_cache *c, size_t i) {
  free(c->e[i].key);
  free_secret(c->e[i].tok);
  c->e[i] = c->e[--c->count];
  memset(&c->e[c->count], 0, sizeof c->e[c->count]);
}

void fl_token_cache_free(fl_token_cache *c) {
  if (!c)
    return;
  while (c->count > 0)
    entry_drop(c, c->count - 1);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

size_t fl_token_cache_key(char *buf, size_t n, const char *host,
                          const char *scope, const char *identity) {
  host = host ? host : "";
  scope = scope ? scope : "";
  identity = identity ? identity : "";
  int len = snprintf(buf, n, "%zu:%s|%zu:%s|%zu:%s", strlen(host), host,
                     strlen(scope), scope, strlen(identity), identity);
  return len < 0 ? 0 : (size_t)len;
}

/* Index of key, or -1. Called with the lock held. */
static long entry_find(const fl_token_cache *c, const char *key) {
  for (size_t i = 0; i < c->count; i++)
    if (strcmp(c->e[i].key, key) == 0)
      return (long)i;
  return -1;
}

int fl_token_cache_get(fl_token_cache *c, const char *key, char *tok,
                       size_t n) {
  int found = 0;
  if (tok && n > 0)
    tok[0] = '\0';
  if (!c || !key)
    return 0;
  pthread_mutex_lock(&c->mu);
  long i = entry_find(c, key);
  if (i >= 0 && c->now() >= c->e[i].expires) {
    entry_drop(c, (size_t)i);
  } else if (i >= 0 && tok) {
    size_t len = strlen(c->e[i].tok);
    if (len < n) {
      memcpy(tok, c->e[i].tok, len + 1);
      found = 1;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return found;
}

/* The slot for a new key. Called with the lock held and the cache full:
 * an expired entry, else the one put longest ago. */
static size_t victim(const fl_token_cache *c, time_t now) {
  size_t oldest = 0;
  for (size_t i = 0; i < c->count; i++) {
    if (now >= c->e[i].expires)
      return i;
    if (c->e[i].seq < c->e[oldest].seq)
      oldest = i;
  }
  return oldest;
}

void fl_token_cache_put(fl_token_cache *c, const char *key, const char *tok,
                        long expires_in) {
  if (!c || !key || !tok)
    return;
  if (expires_in < 0)
    expires_in = 0;
  if (expires_in > EXPIRES_MAX)
    expires_in = EXPIRES_MAX;
  long margin = expires_in / 10;
  if (margin < MARGIN_MIN)
    margin = MARGIN_MIN;
  char *k = strdup(key);
  char *t = strdup(tok);
  if (!k || !t) { /* the cache is an optimisation: drop the token */
    free(k);
    free_secret(t);
    return;
  }
  pthread_mutex_lock(&c->mu);
  time_t now = c->now();
  long i = entry_find(c, key);
  if (i >= 0) {
    free(k);
    free_secret(c->e[i].tok);
  } else if (c->count < FL_TOKEN_CACHE_MAX) {
    i = (long)c->count++;
    c->e[i].key = k;
  } else {
    i = (long)victim(c, now);
    free(c->e[i].key);
    free_secret(c->e[i].tok);
    c->e[i].key = k;
  }
  c->e[i].tok = t;
  c->e[i].expires = now + (time_t)(expires_in - margin);
  c->e[i].seq = ++c->seq;
  pthread_mutex_unlock(&c->mu);
}

void fl_token_cache_invalidate(fl_token_cache *c, const char *key) {
  if (!c || !key)
    return;
  pthread_mutex_lock(&c->mu);
  long i = entry_find(c, key);
  if (i >= 0)
    entry_drop(c, (size_t)i);
  pthread_mutex_unlock(&c->mu);
}

void fl_token_cache_set_clock(fl_token_cache *c, time_t (*now)(void)) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  c->now = now ? now : monotonic_now;
  pthread_mutex_unlock(&c->mu);
}

/* ---- redaction ----------------------------------------------------------- */

typedef struct outbuf {
  char *p;
  size_t n;
  size_t len;
} outbuf;

static void out_put(outbuf *o, const char *s, size_t len) {
  size_t room = o->n - 1 - o->len;
  if (len > room)
    len = room;
  memcpy(o->p + o->len, s, len);
  o->len += len;
  o->p[o->len] = '\0';
}

/* One line (without its CR/LF) into o, redacted if it carries credentials. */
static void redact_line(outbuf *o, const char *s, size_t len) {
  const char *colon = memchr(s, ':', len);
  if (!colon || !(ieq(s, (size_t)(colon - s), "authorization") ||
                  ieq(s, (size_t)(colon - s), "proxy-authorization"))) {
    out_put(o, s, len);
    return;
  }
  const char *end = s + len;
  const char *v = colon + 1;
  while (v < end && is_ws((unsigned char)*v))
    v++;
  out_put(o, s, (size_t)(v - s)); /* "Authorization: " as it was */
  if (v == end)
    return;
  const char *w = v;
  while (w < end && !is_ws((unsigned char)*w))
    w++;
  const char *rest = w;
  while (rest < end && is_ws((unsigned char)*rest))
    rest++;
  if (rest < end) /* "Scheme credentials": keep the scheme */
    out_put(o, v, (size_t)(rest - v));
  out_put(o, "<redacted>", 10);
}

void fl_auth_redact(const char *header_line, char *out, size_t n) {
  if (!out || n == 0)
    return;
  out[0] = '\0';
  if (!header_line)
    return;
  outbuf o = {out, n, 0};
  const char *p = header_line;
  while (*p) {
    size_t len = strcspn(p, "\r\n");
    redact_line(&o, p, len);
    p += len;
    size_t eol = strspn(p, "\r\n");
    out_put(&o, p, eol);
    p += eol;
  }
}
