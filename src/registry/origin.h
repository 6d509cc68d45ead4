/*
 * origin.h - the one origin rule for URLs a registry hands over.
 *
 * A registry answers with URLs of its own choosing: the next page of a
 * listing (Link), where to send an upload (Location), a redirect, the token
 * service (the realm of a Bearer challenge). Every one of them is judged
 * here, against the registry's own base URL, and nowhere else:
 *
 *   FL_ORIGIN_SAME       scheme, host and port are the registry's (host
 *                        compared without case, default ports filled in):
 *                        the registry's credentials may go there.
 *   FL_ORIGIN_OTHER      another origin: no credentials of this registry go
 *                        there (a caller may refuse it outright, as
 *                        pagination does).
 *   FL_ORIGIN_DOWNGRADE  the registry is https and the URL is plain http:
 *                        always refused, credentials or not.
 *   FL_ORIGIN_INVALID    not an absolute http(s) URL: refused.
 *
 * Pure functions on strings; safe from any thread.
 */
#ifndef FL_REGISTRY_ORIGIN_H
#define FL_REGISTRY_ORIGIN_H

#include <stddef.h>

typedef enum fl_origin_verdict {
  FL_ORIGIN_SAME = 0,
  FL_ORIGIN_OTHER,
  FL_ORIGIN_DOWNGRADE,
  FL_ORIGIN_INVALID
} fl_origin_verdict;

/* Longest "scheme://host:port" fl_origin_of writes, with its NUL. */
#define FL_ORIGIN_MAX 300

/* Judge absolute URL `url` against the registry's base URL `base`
 * ("https://host[:port]"). */
fl_origin_verdict fl_origin_compare(const char *base, const char *url);

/* The origin of an absolute http(s) URL as "scheme://host:port" (lower-case
 * scheme and host, the port always written) into out; 0 when url is not
 * one. For messages and for comparing with origins a user configured. */
int fl_origin_of(const char *url, char *out, size_t n);

/* 1 when `configured`, an origin as a user wrote it
 * ("https://auth.example.com", "http://127.0.0.1:5001"), names the origin of
 * `url`. */
int fl_origin_matches(const char *configured, const char *url);

/* Words for a verdict, for error messages ("another origin"). */
const char *fl_origin_verdict_text(fl_origin_verdict v);

#endif
