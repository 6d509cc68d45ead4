/*
 * credentials.h - where the credentials for a registry come from.
 *
 * Given a registry host, fl_credentials_lookup finds what to authenticate
 * with, the way the docker CLI and podman do, first match wins: the user's
 * explicit per-registry settings (a password from an environment variable or
 * a file, or a named credential helper), then the Docker config
 * ($DOCKER_CONFIG/config.json or ~/.docker/config.json: credHelpers, auths,
 * credsStore), then the containers auth file (podman/skopeo/buildah's
 * auth.json). Credential helpers are the docker-credential-NAME programs of
 * the docker-credential-helpers protocol, run without a shell. Nothing here
 * speaks HTTP or logs: the result says where the credentials came from, for
 * the caller's logs, and never carries a secret in an error message.
 */
#ifndef FL_REGISTRY_CREDENTIALS_H
#define FL_REGISTRY_CREDENTIALS_H

#include <stddef.h>

#include "freightliner.h"

/* Credentials for one registry. Every pointer is NULL or a heap string; free
 * and wipe with fl_credentials_clear. Exactly one kind is set:
 * username + password (Basic, or a bearer token fetched with Basic),
 * identity_token (an OAuth2 refresh token; username may be set too), or
 * registry_token (used as the Bearer token as is). */
typedef struct fl_credentials {
  char *username;
  char *password;
  char *identity_token;
  char *registry_token;
  /* Where they came from, for logs: "password_env FOO",
   * "/home/u/.docker/config.json auths \"ghcr.io\"", "credential helper
   * docker-credential-ecr-login". Never a secret. */
  char source[128];
} fl_credentials;

/* The user's explicit settings for one registry (any field may be NULL).
 * A plain password is deliberately not a field. */
typedef struct fl_cred_settings {
  const char *username;
  const char *password_env;      /* name of the variable holding the password */
  const char *password_file;     /* file holding the password */
  const char *credential_helper; /* NAME of docker-credential-NAME */
} fl_cred_settings;

/* Find the credentials for host ("ghcr.io", "localhost:5000"; any of
 * "docker.io", "index.docker.io", "registry-1.docker.io" for Docker Hub).
 * FL_OK with *out filled (caller clears it); FL_ENOT_FOUND when nothing
 * applies (go anonymous; err says why when a helper declined); otherwise an
 * error naming the file, variable or helper and what is wrong: FL_EINVALID
 * (contradictory settings, unset password variable, malformed JSON or
 * base64), FL_EIO (unreadable file), FL_EUNAUTHORIZED (a credential helper
 * failed or is not on PATH), FL_ENOMEM. *out is zeroed first, and left
 * zeroed on every code but FL_OK.
 *
 * Order, first match wins:
 *  1. explicit_settings, when not NULL and any field is set: username with
 *     the password from the variable password_env or the file password_file
 *     (one trailing "\n" or "\r\n" stripped), or credential_helper (the
 *     username then comes from the helper). No fall-through:
 *     explicit settings that cannot be satisfied are an error.
 *  2. Docker config: credHelpers[host], else auths[host] (keys may be
 *     "host", "https://host", "http://host/v1/"...; Docker Hub's key is
 *     "https://index.docker.io/v1/"), else credsStore. An auths entry with
 *     nothing usable in it (docker login with a credsStore writes "{}")
 *     counts as absent.
 *  3. containers auth.json: $REGISTRY_AUTH_FILE alone when set; else
 *     $XDG_RUNTIME_DIR/containers/auth.json, then
 *     ~/.config/containers/auth.json. Keys naming a namespace
 *     ("quay.io/org") are not matched against a bare host.
 * A missing file is skipped; an unreadable or malformed one is an error,
 * and so is a helper that fails (one that has nothing for this registry
 * passes on to the next source).
 *
 * Thread-safe, provided nothing changes the environment meanwhile. Blocks
 * while a credential helper runs (see fl_credentials_set_helper_timeout). */
fl_code fl_credentials_lookup(const char *host,
                              const fl_cred_settings *explicit_settings,
                              fl_credentials *out, fl_error *err);

/* Free every string, wiping the secrets first, and zero *c. NULL is fine. */
void fl_credentials_clear(fl_credentials *c);

/* 1 when c holds a registry token, to be sent as "Bearer TOKEN" without any
 * token request; 0 otherwise and for NULL. */
int fl_credentials_is_bearer(const fl_credentials *c);

/* A non-secret name for whose credentials these are, for token cache keys:
 * the username, else c->source when c holds any secret, else "" (anonymous,
 * or NULL). */
const char *fl_credentials_identity(const fl_credentials *c);

/* How long a credential helper may run before it is killed (default 30000
 * ms). Process-wide; meant for tests. ms <= 0 restores the default. */
void fl_credentials_set_helper_timeout(int ms);

#endif /* FL_REGISTRY_CREDENTIALS_H */
