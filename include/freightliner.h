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
 * (constants). Its functions are marked FL_API and are the only symbols a
 * shared object built from the core exports (core.so, and any shared
 * library); everything else is compiled with -fvisibility=hidden
 * (`make check` compares `nm -D` against this header).
 */
#ifndef FREIGHTLINER_H
#define FREIGHTLINER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version and API stability (deploy, issue #14) --------------------
 *
 * This header is the stable embedding API: within one major version,
 * declarations here keep their meaning and signatures, enum values keep
 * their numbers, and new ones are only added. Anything not declared here
 * (src/, the Lua stdlib's internals) may change in any release. Build
 * against it with `pkg-config --cflags --libs freightliner` (the library
 * is static; the pkg-config file lists what it links), see
 * scripts/examples/embed.c. The version below is the one source of the
 * project's version: CMake, the man page and `make dist` read it. */
#define FL_VERSION_MAJOR 0
#define FL_VERSION_MINOR 1
#define FL_VERSION_PATCH 0
#define FL_VERSION_STR_(x) #x
#define FL_VERSION_STR(x) FL_VERSION_STR_(x)
/* "MAJOR.MINOR.PATCH" */
#define FL_VERSION                                                             \
  FL_VERSION_STR(FL_VERSION_MAJOR)                                             \
  "." FL_VERSION_STR(FL_VERSION_MINOR) "." FL_VERSION_STR(FL_VERSION_PATCH)
/* One comparable number: 0xMMmmpp. */
#define FL_VERSION_NUM                                                         \
  ((FL_VERSION_MAJOR << 16) | (FL_VERSION_MINOR << 8) | FL_VERSION_PATCH)
/* True when this header is at least version maj.min.patch. */
#define FL_VERSION_AT_LEAST(maj, min, patch)                                   \
  (FL_VERSION_NUM >= (((maj) << 16) | ((min) << 8) | (patch)))
/* ---- end of version block ---------------------------------------------- */

/* The export macro: what a shared object built from the core exposes. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define FL_API __attribute__((visibility("default")))
#else
#define FL_API
#endif

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
FL_API const char *fl_code_name(fl_code code);

/* Fill err (may be NULL) and return code. printf-style message. */
FL_API fl_code fl_error_set(fl_error *err, fl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing error message with context ("pulling x: "). */
FL_API void fl_error_prefix(fl_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- digests ----------------------------------------------------------- */

typedef enum fl_digest_alg { FL_SHA256 = 0, FL_SHA512 = 1 } fl_digest_alg;

/* "sha512:" + 128 hex + NUL */
#define FL_DIGEST_STR_MAX 136

typedef struct fl_hasher fl_hasher;

/* Algorithm from its name ("sha256"); returns FL_EUNSUPPORTED otherwise. */
FL_API fl_code fl_digest_alg_from_name(const char *name, size_t len,
                                       fl_digest_alg *alg);
FL_API const char *fl_digest_alg_name(fl_digest_alg alg);
/* Length in hex characters of a digest of this algorithm. */
FL_API size_t fl_digest_hex_len(fl_digest_alg alg);

FL_API fl_hasher *fl_hasher_new(fl_digest_alg alg);
FL_API fl_code fl_hasher_update(fl_hasher *h, const void *data, size_t len);
/* Write "alg:hex" into out (FL_DIGEST_STR_MAX bytes). After final the hasher
 * may only be freed or reset. */
FL_API fl_code fl_hasher_final(fl_hasher *h, char out[FL_DIGEST_STR_MAX]);
FL_API fl_code fl_hasher_reset(fl_hasher *h);
/* Make dst (same algorithm) continue exactly where src is: a snapshot of a
 * stream's hash at some offset, to go on from later. src must not be
 * finished; FL_EINVALID otherwise or when the algorithms differ. */
FL_API fl_code fl_hasher_copy(fl_hasher *dst, const fl_hasher *src);
FL_API void fl_hasher_free(fl_hasher *h);

/* One-shot digest of a buffer. */
FL_API fl_code fl_digest_buffer(fl_digest_alg alg, const void *data, size_t len,
                                char out[FL_DIGEST_STR_MAX]);
/* Streamed digest of a file in constant memory; *size gets its length. */
FL_API fl_code fl_digest_file(fl_digest_alg alg, const char *path,
                              char out[FL_DIGEST_STR_MAX], uint64_t *size,
                              fl_error *err);
/* Validate "algorithm:hex": known algorithm, lower-case hex, exact length. */
FL_API fl_code fl_digest_parse(const char *s, fl_digest_alg *alg,
                               fl_error *err);

/* ---- the embedded Lua host --------------------------------------------- */

typedef struct fl_host fl_host;

typedef struct fl_host_options {
  /* Load the stdlib from this directory instead of the copy compiled into
   * the binary (NULL: use $FREIGHTLINER_LUA_PATH, else the embedded one). */
  const char *lua_dir;
} fl_host_options;

/* A Lua 5.4 state with the standard libraries, freightliner.core and the
 * stdlib preloaded. NULL on allocation failure. */
FL_API fl_host *fl_host_new(const fl_host_options *opts);
FL_API void fl_host_free(fl_host *host);
/* The state, for embedders that push their own values. Only ever touch it
 * from the thread that created the host. */
FL_API struct lua_State *fl_host_lua(fl_host *host);
/* Run the stdlib CLI with argv and return the process exit status. */
FL_API int fl_host_main(fl_host *host, int argc, char **argv);

/* The Lua C module entry point: require("freightliner.core"). */
FL_API int luaopen_freightliner_core(struct lua_State *L);

#ifdef __cplusplus
}
#endif

#endif /* FREIGHTLINER_H */
