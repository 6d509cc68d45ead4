/*
 * origin.c - the one origin rule for URLs a registry hands over (see
 * origin.h). URLs are taken apart by libcurl's URL parser, the same one
 * that later sends the request, so what is judged is what is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "registry/origin.h"

typedef struct origin {
  char scheme[8]; /* "http" or "https" */
  char host[256]; /* lower case; IPv6 in brackets as curl gives it */
  long port;
} origin;

/* Parse url's origin; 0 when it is not an absolute http(s) URL. */
static int parse(const char *url, origin *o) {
  int ok = 0;
  char *scheme = NULL, *host = NULL, *port = NULL;
  CURLU *u = url ? curl_url() : NULL;
  if (!u)
    return 0;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
    goto out;
  if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
    goto out;
  if (!*host || strlen(host) >= sizeof o->host)
    goto out;
  snprintf(o->scheme, sizeof o->scheme, "%s",
           strcasecmp(scheme, "https") == 0 ? "https" : "http");
  size_t i = 0;
  for (; host[i]; i++)
    o->host[i] =
        (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
  o->host[i] = '\0';
  char *end = NULL;
  o->port = strtol(port, &end, 10);
  ok = end && *end == '\0' && o->port > 0 && o->port < 65536;
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return ok;
}

fl_origin_verdict fl_origin_compare(const char *base, const char *url) {
  origin b, u;
  if (!parse(base, &b) || !parse(url, &u))
    return FL_ORIGIN_INVALID;
  if (strcmp(b.scheme, "https") == 0 && strcmp(u.scheme, "http") == 0)
    return FL_ORIGIN_DOWNGRADE;
  if (strcmp(b.scheme, u.scheme) == 0 && strcmp(b.host, u.host) == 0 &&
      b.port == u.port)
    return FL_ORIGIN_SAME;
  return FL_ORIGIN_OTHER;
}

int fl_origin_of(const char *url, char *out, size_t n) {
  origin o;
  if (!parse(url, &o))
    return 0;
  int w = snprintf(out, n, "%s://%s:%ld", o.scheme, o.host, o.port);
  return w > 0 && (size_t)w < n;
}

int fl_origin_matches(const char *configured, const char *url) {
  origin a, b;
  if (!parse(configured, &a) || !parse(url, &b))
    return 0;
  return strcmp(a.scheme, b.scheme) == 0 && strcmp(a.host, b.host) == 0 &&
         a.port == b.port;
}

const char *fl_origin_verdict_text(fl_origin_verdict v) {
  switch (v) {
  case FL_ORIGIN_SAME:
    return "the registry's own origin";
  case FL_ORIGIN_OTHER:
    return "another origin";
  case FL_ORIGIN_DOWNGRADE:
    return "plain HTTP from an HTTPS registry";
  default:
    return "not an absolute http(s) URL";
  }
}
