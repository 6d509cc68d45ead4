/*
 * error.c - result codes and error messages (see include/freightliner.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "freightliner.h"

static const char *const code_names[] = {
    [FL_OK] = "OK",
    [FL_EINVALID] = "INVALID",
    [FL_EIO] = "IO",
    [FL_ENOMEM] = "NOMEM",
    [FL_ENOT_FOUND] = "NOT_FOUND",
    [FL_EUNAUTHORIZED] = "UNAUTHORIZED",
    [FL_EDENIED] = "DENIED",
    [FL_EUNREACHABLE] = "UNREACHABLE",
    [FL_ETLS] = "TLS",
    [FL_ETIMEOUT] = "TIMEOUT",
    [FL_ERATE_LIMITED] = "RATE_LIMITED",
    [FL_EDIGEST_MISMATCH] = "DIGEST_MISMATCH",
    [FL_ETOO_LARGE] = "TOO_LARGE",
    [FL_EUNSUPPORTED] = "UNSUPPORTED",
    [FL_EPROTOCOL] = "PROTOCOL",
    [FL_ESERVER] = "SERVER",
    [FL_ECANCELLED] = "CANCELLED",
    [FL_EEXISTS] = "EXISTS",
    [FL_EUNVERIFIED] = "UNVERIFIED",
};

const char *fl_code_name(fl_code code) {
  if ((unsigned)code >= sizeof code_names / sizeof code_names[0] ||
      !code_names[code])
    return "UNKNOWN";
  return code_names[code];
}

fl_code fl_error_set(fl_error *err, fl_code code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

void fl_error_prefix(fl_error *err, const char *fmt, ...) {
  if (!err)
    return;
  char prefix[FL_ERROR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t plen = strlen(prefix);
  size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
  if (plen > sizeof err->msg - 1)
    plen = sizeof err->msg - 1;
  if (plen + mlen > sizeof err->msg - 1)
    mlen = sizeof err->msg - 1 - plen;
  memmove(err->msg + plen, err->msg, mlen);
  memcpy(err->msg, prefix, plen);
  err->msg[plen + mlen] = '\0';
}
