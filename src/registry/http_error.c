/*
 * http_error.c - a registry's error responses: the Distribution error body
 * parsed into codes and a message (fl_registry_error), and a non-2xx
 * response turned into an fl_code and a message (fl_http_status_error).
 *
 * The body is outside input (any registry, any proxy in front of it): it is
 * parsed with a bounded jansson load, codes are kept only when they look
 * like codes, and the message is cut to size with control characters
 * replaced, so nothing a server sends can break a log line or a terminal.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "registry/http.h"

/* Distribution's codes: upper-case words joined by '_'. */
static int is_code(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
          s[n] == '_'))
      return 0;
  return n > 0 && n < FL_REGISTRY_CODE_MAX;
}

/* Copy a message, cut to fit, with bytes below 0x20 and DEL shown as '?'. */
static void copy_message(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[i] = src[i];
    if (c < 0x20 || c == 0x7f)
      dst[i] = '?';
  }
  dst[i] = '\0';
}

int fl_registry_error_parse(const char *body, size_t len,
                            fl_registry_error *out) {
  memset(out, 0, sizeof *out);
  if (!body || !len)
    return 0;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *errors = json_object_get(root, "errors");
  size_t i;
  json_t *e;
  int found = 0;
  json_array_foreach(errors, i, e) {
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (i < FL_REGISTRY_CODES_MAX && code && is_code(code))
      memcpy(out->codes[i], code, strlen(code) + 1);
    if (i == 0 && msg)
      copy_message(out->message, sizeof out->message, msg);
    found |= (code && is_code(code)) || (i == 0 && msg && *msg);
  }
  out->count = json_array_size(errors);
  json_decref(root);
  if (!found)
    memset(out, 0, sizeof *out);
  return found;
}

int fl_registry_error_has(const fl_registry_error *e, const char *code) {
  for (size_t i = 0; i < e->count && i < FL_REGISTRY_CODES_MAX; i++)
    if (strcmp(e->codes[i], code) == 0)
      return 1;
  return 0;
}

/* ": CODE: message (and N more)" or "" */
static void error_text(const fl_registry_error *e, char *out, size_t n) {
  const char *code = e->codes[0];
  out[0] = '\0';
  if (!*code && !*e->message)
    return;
  int w = snprintf(out, n, ": %s%s%s", code, *code && *e->message ? ": " : "",
                   e->message);
  if (e->count > 1 && w > 0 && (size_t)w < n)
    snprintf(out + w, n - (size_t)w, " (and %zu more)", e->count - 1);
}

/* What the status says, when no code says more. */
static fl_code status_code(long s, const char **hint) {
  *hint = "";
  switch (s) {
  case 401:
    *hint = " (check the credentials for this registry)";
    return FL_EUNAUTHORIZED;
  case 403:
    *hint = " (the credentials are valid but not allowed to do this)";
    return FL_EDENIED;
  case 404:
    return FL_ENOT_FOUND;
  case 429:
    *hint = " (rate limited; try later or lower the request rate)";
    return FL_ERATE_LIMITED;
  default:
    return s >= 500 ? FL_ESERVER : FL_EPROTOCOL;
  }
}

fl_code fl_http_status_error(fl_http *h, const fl_http_response *resp,
                             const char *what, fl_error *err) {
  fl_registry_error e;
  char detail[FL_REGISTRY_MESSAGE_MAX + FL_REGISTRY_CODE_MAX + 40];
  const char *hint;
  fl_code code = status_code(resp->status, &hint);
  fl_registry_error_parse(resp->body, resp->body_len, &e);
  error_text(&e, detail, sizeof detail);
  if (fl_registry_error_has(&e, "DIGEST_INVALID")) {
    code = FL_EDIGEST_MISMATCH;
    hint = " (the content does not match its digest)";
  } else if (fl_registry_error_has(&e, "TOOMANYREQUESTS")) {
    code = FL_ERATE_LIMITED;
    hint = " (rate limited; try later or lower the request rate)";
  } else if (resp->status == 404 && e.count == 0) {
    hint = " (not found)"; /* a HEAD, or a registry that says no more */
  }
  return fl_error_set(err, code, "%s: %s answered HTTP %ld%s%s", what,
                      fl_http_host(h), resp->status, detail, hint);
}
