/*
 * freightliner.h - the public C API of the Freightliner core.
 *
 * Freightliner copies container images between registries and OCI layout
 * directories. Its C core (this API) is the mechanism: errors, digests,
 * image references, and the embedded Lua 5.4 host that runs the policy
 * half of the product (the stdlib and user scripts). A C program embeds
 * Freightliner by linking libfreightliner.a and either calling these
 * functions directly or creating a host with fl_host_new() and running Lua
 * in it. Every symbol in this header starts with `fl_` (types) or `FL_`
 * (constants); nothing else is exported.
 */
#ifndef FREIGHTLINER_H
#define FREIGHTLINER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FL_VERSION "0.1.0"

/* ---- errors ------------------------------------------------------------ */

/* Stable result codes; fl_code_name() gives the upper-case name that the Lua
 * API returns as the third value of `nil, message, CODE`. */
typedef enum fl_code {
  FL_OK = 0,
  FL_EINVALID,         /* INVALID: malformed input (reference, digest, JSON) */
  FL_EIO,              /* IO: local file system failure */
  FL_ENOMEM,           /* NOMEM: out of memory */
  FL_ENOT_FOUND,       /* NOT_FOUND: repository, manifest, blob, file */
  FL_EUNAUTHORIZED,    /* UNAUTHORIZED: credentials missing or refused */
  FL_EDENIED,          /* DENIED: authenticated but not allowed */
  FL_EUNREACHABLE,     /* UNREACHABLE: connect/DNS failure, circuit open */
  FL_ETLS,             /* TLS: handshake, verification, pinning */
  FL_ETIMEOUT,         /* TIMEOUT: connect timeout or stalled transfer */
  FL_ERATE_LIMITED,    /* RATE_LIMITED: 429 after retries */
  FL_EDIGEST_MISMATCH, /* DIGEST_MISMATCH: content does not match digest */
  FL_ETOO_LARGE,       /* TOO_LARGE: over a size limit (e.g. 4 MiB manifest) */
  FL_EUNSUPPORTED,     /* UNSUPPORTED: schema 1, unknown algorithm/media type */
  FL_EPROTOCOL,        /* PROTOCOL: the server broke the protocol */
  FL_ESERVER,          /* SERVER: 5xx after retries */
  FL_ECANCELLED,       /* CANCELLED: stopped by signal or caller */
  FL_EEXISTS,          /* EXISTS: target already exists */
  FL_EUNVERIFIED       /* UNVERIFIED: no valid signature by the given keys */
} fl_code;

#define FL_ERROR_MSG_MAX 512

/* An error: a code and a message that names what failed and why. */
typedef struct fl_error {
  fl_code code;
  char msg[FL_ERROR_MSG_MAX];
} fl_error;

/* Upper-case name of a code ("DIGEST_MISMATCH"); "UNKNOWN" for bad values. */
const char *fl_code_name(fl_code code);

/* Fill err (may be NULL) and return code. printf-style message. */
fl_code fl_error_set(fl_error *err, fl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing error message with context ("pulling x: "). */
void fl_error_prefix(fl_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- digests ----------------------------------------------------------- */

typedef enum fl_digest_alg { FL_SHA256 = 0, FL_SHA512 = 1 } fl_digest_alg;

/* "sha512:" + 128 hex + NUL */
#define FL_DIGEST_STR_MAX 136

typedef struct fl_hasher fl_hasher;

/* Algorithm from its name ("sha256"); returns FL_EUNSUPPORTED otherwise. */
fl_code fl_digest_alg_from_name(const char *name, size_t len,
                                fl_digest_alg *alg);
const char *fl_digest_alg_name(fl_digest_alg alg);
/* Length in hex characters of a digest of this algorithm. */
size_t fl_digest_hex_len(fl_digest_alg alg);

fl_hasher *fl_hasher_new(fl_digest_alg alg);
fl_code fl_hasher_update(fl_hasher *h, const void *data, size_t len);
/* Write "alg:hex" into out (FL_DIGEST_STR_MAX bytes). After final the hasher
 * may only be freed or reset. */
fl_code fl_hasher_final(fl_hasher *h, char out[FL_DIGEST_STR_MAX]);
fl_code fl_hasher_reset(fl_hasher *h);
/* Make dst (same algorithm) continue exactly where src is: a snapshot of a
 * stream's hash at some offset, to go on from later. src must not be
 * finished; FL_EINVALID otherwise or when the algorithms differ. */
fl_code fl_hasher_copy(fl_hasher *dst, const fl_hasher *src);
void fl_hasher_free(fl_hasher *h);

/* One-shot digest of a buffer. */
fl_code fl_digest_buffer(fl_digest_alg alg, const void *data, size_t len,
                         char out[FL_DIGEST_STR_MAX]);
/* Streamed digest of a file in constant memory; *size gets its length. */
fl_code fl_digest_file(fl_digest_alg alg, const char *path,
                       char out[FL_DIGEST_STR_MAX], uint64_t *size,
                       fl_error *err);
/* Validate "algorithm:hex": known algorithm, lower-case hex, exact length. */
fl_code fl_digest_parse(const char *s, fl_digest_alg *alg, fl_error *err);

/* ---- the embedded Lua host --------------------------------------------- */

typedef struct fl_host fl_host;

typedef struct fl_host_options {
  /* Load the stdlib from this directory instead of the copy compiled into
   * the binary (NULL: use $FREIGHTLINER_LUA_PATH, else the embedded one). */
  const char *lua_dir;
} fl_host_options;

/* A Lua 5.4 state with the standard libraries, freightliner.core and the
 * stdlib preloaded. NULL on allocation failure. */
fl_host *fl_host_new(const fl_host_options *opts);
void fl_host_free(fl_host *host);
/* The state, for embedders that push their own values. Only ever touch it
 * from the thread that created the host. */
struct lua_State *fl_host_lua(fl_host *host);
/* Run the stdlib CLI with argv and return the process exit status. */
int fl_host_main(fl_host *host, int argc, char **argv);

/* The Lua C module entry point: require("freightliner.core"). */
int luaopen_freightliner_core(struct lua_State *L);

#ifdef __cplusplus
}
#endif

#endif /* FREIGHTLINER_H */
