/*
 * reference.c - parse, normalise and format Docker/distribution image
 * references (see reference.h for the grammar and the normalisation rules).
 *
 * The input is never copied before it is valid: the parser splits it into
 * spans (offset + length into the caller's string), checks each span against
 * its production, and only then copies the pieces into the fl_ref. Spans keep
 * offsets absolute, so every error can say where it is.
 *
 * The same productions check a repository name, a tag or a digest on its
 * own (fl_ref_check_*): this file is the one place where their grammar
 * lives; registry.c, oci_layout.c, digest.c (fl_digest_parse) and the Lua
 * config (core.ref.check_*) call it.
 */
#include "registry/reference.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NAME_LEN_MAX 255 /* domain + "/" + path, as distribution's limit */
#define TAG_LEN_MAX 128
#define QUOTE_MAX 160 /* longest input quoted in full in a message */
#define PART_MAX 140  /* longest part (tag, domain...) quoted in a message */
#define NO_OFFSET ((size_t)-1)
/* What may appear, said where a character may not. */
#define REPO_CHARS                                                             \
  "allowed: lower-case letters, digits, '/' between components, and '.', "     \
  "'_', '__' or '-' between letters or digits"
#define TAG_CHARS "allowed: letters, digits, '_', '.' and '-'"

static const char docker_domain[] = "docker.io";
static const char docker_legacy[] = "index.docker.io";
static const char docker_api[] = "registry-1.docker.io";
static const char library[] = "library/";
static const char transport[] = "docker://";
static const char default_tag[] = "latest";

/* A piece of the input: in[off .. off + len). */
typedef struct span {
  size_t off;
  size_t len;
} span;

/* What the input is, which decides how an error message starts. */
typedef enum ctx_kind {
  CTX_REFERENCE,  /* "invalid reference "<in>": ..." */
  CTX_REPOSITORY, /* "invalid repository name "<in>": ..." */
  CTX_PART        /* a tag or a digest alone: the detail quotes it */
} ctx_kind;

typedef struct ctx {
  const char *in; /* the whole input, as the caller gave it */
  fl_error *err;
  ctx_kind kind;
} ctx;

/* The input cut at its separators; nothing is validated yet. */
typedef struct parts {
  span name;   /* [domain/]path */
  span tag;    /* after the ':' */
  span digest; /* after the '@' */
  int has_tag;
  int has_digest;
} parts;

/* ---- character classes -------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_alnum(char c) {
  return is_digit(c) || is_lower(c) || is_upper(c);
}
static int is_lower_alnum(char c) { return is_digit(c) || is_lower(c); }
static int is_word(char c) { return is_alnum(c) || c == '_'; }
static int is_path_sep(char c) { return c == '.' || c == '_' || c == '-'; }

static int is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_lower_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}

static int span_eq(const char *in, span s, const char *lit) {
  return s.len == strlen(lit) && memcmp(in + s.off, lit, s.len) == 0;
}

static int span_has(const char *in, span s, char c) {
  return memchr(in + s.off, c, s.len) != NULL;
}

/* ---- errors ------------------------------------------------------------- */

/* How much of a part to quote, and the int that "%.*s" wants. */
static int qlen(size_t len) { return (int)(len > PART_MAX ? PART_MAX : len); }

/* A printable rendering of one input byte: 'x' or \xNN. */
static const char *char_desc(char c, char buf[8]) {
  unsigned char u = (unsigned char)c;
  if (u >= 0x20 && u < 0x7f)
    snprintf(buf, 8, "'%c'", c);
  else
    snprintf(buf, 8, "\\x%02x", u);
  return buf;
}

/* Fill c->err with "<prefix><detail> (at offset N)", prefix by c->kind. */
__attribute__((format(printf, 4, 0))) static fl_code
vfail(const ctx *c, fl_code code, size_t off, const char *fmt, va_list ap) {
  char detail[FL_ERROR_MSG_MAX];
  char at[48] = "";
  size_t n = strlen(c->in);
  int quoted = (int)(n > QUOTE_MAX ? QUOTE_MAX : n);
  const char *more = n > QUOTE_MAX ? "..." : "";
  vsnprintf(detail, sizeof detail, fmt, ap);
  if (off != NO_OFFSET)
    snprintf(at, sizeof at, " (at offset %zu)", off);
  if (c->kind == CTX_PART)
    return fl_error_set(c->err, code, "%s%s", detail, at);
  return fl_error_set(c->err, code, "invalid %s \"%.*s%s\": %s%s",
                      c->kind == CTX_REFERENCE ? "reference"
                                               : "repository name",
                      quoted, c->in, more, detail, at);
}

__attribute__((format(printf, 3, 4))) static fl_code
fail(const ctx *c, size_t off, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fl_code rc = vfail(c, FL_EINVALID, off, fmt, ap);
  va_end(ap);
  return rc;
}

/* fail() with another code (an unsupported digest algorithm checked alone is
 * UNSUPPORTED, as fl_digest_parse has always said). */
__attribute__((format(printf, 4, 5))) static fl_code
fail_code(const ctx *c, fl_code code, size_t off, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fl_code rc = vfail(c, code, off, fmt, ap);
  va_end(ap);
  return rc;
}

/* ---- splitting ---------------------------------------------------------- */

static size_t skip_transport(const char *s) {
  size_t n = sizeof transport - 1;
  return strncmp(s, transport, n) == 0 ? n : 0;
}

/* A bare 64-hex string is an image ID, never a repository name. */
static int is_identifier(const char *s) {
  size_t i = 0;
  while (is_lower_hex(s[i]))
    i++;
  return i == 64 && s[i] == '\0';
}

/* name [":" tag] ["@" digest]: the digest starts at the first '@' (no other
 * part may hold one), the tag at the first ':' after the name's last '/'
 * (a ':' before it belongs to the domain's port). */
static void split_parts(const char *in, size_t start, parts *p) {
  size_t end = start + strlen(in + start);
  const char *at = strchr(in + start, '@');
  size_t name_end = at ? (size_t)(at - in) : end;
  size_t last_slash = start;
  const char *colon;
  memset(p, 0, sizeof *p);
  if (at) {
    p->has_digest = 1;
    p->digest = (span){name_end + 1, end - name_end - 1};
  }
  for (size_t i = start; i < name_end; i++)
    if (in[i] == '/')
      last_slash = i;
  colon = memchr(in + last_slash, ':', name_end - last_slash);
  if (colon) {
    p->has_tag = 1;
    p->tag =
        (span){(size_t)(colon - in) + 1, name_end - (size_t)(colon - in) - 1};
    name_end = (size_t)(colon - in);
  }
  p->name = (span){start, name_end - start};
}

/* Whether the part before the first '/' names a registry (the rules of
 * distribution's splitDockerDomain). */
static int looks_like_domain(const char *in, span first) {
  if (span_eq(in, first, "localhost"))
    return 1;
  if (span_has(in, first, '.') || span_has(in, first, ':'))
    return 1;
  for (size_t i = 0; i < first.len; i++)
    if (is_upper(in[first.off + i]))
      return 1;
  return 0;
}

/* Cut name into domain and remote path; dom.len is 0 when the name has no
 * domain of its own (Docker Hub). */
static void split_domain(const char *in, span name, span *dom, span *rem) {
  const char *slash = memchr(in + name.off, '/', name.len);
  *dom = (span){name.off, 0};
  *rem = name;
  if (!slash)
    return;
  span first = {name.off, (size_t)(slash - in) - name.off};
  if (!looks_like_domain(in, first))
    return;
  *dom = first;
  *rem = (span){first.off + first.len + 1, name.len - first.len - 1};
}

/* ---- domain := host [":" port] ------------------------------------------ */

/* domain-component ("." domain-component)*; *i is advanced past it. */
static fl_code check_domain_name(const ctx *c, span d, size_t *i) {
  const char *s = c->in;
  size_t end = d.off + d.len;
  for (;;) {
    size_t start = *i;
    if (*i == end || !is_alnum(s[*i]))
      return fail(c, *i,
                  "domain \"%.*s\": each name component must start with a "
                  "letter or digit",
                  qlen(d.len), s + d.off);
    while (*i < end && (is_alnum(s[*i]) || s[*i] == '-'))
      (*i)++;
    if (s[*i - 1] == '-')
      return fail(
          c, *i - 1,
          "domain \"%.*s\": name component \"%.*s\" must not end with '-'",
          qlen(d.len), s + d.off, qlen(*i - start), s + start);
    if (*i == end || s[*i] != '.')
      return FL_OK;
    (*i)++;
  }
}

/* "[" [0-9a-fA-F:]+ "]"; *i is advanced past it. */
static fl_code check_ipv6(const ctx *c, span d, size_t *i) {
  const char *s = c->in;
  size_t end = d.off + d.len;
  size_t start = ++(*i);
  char ch[8];
  while (*i < end && (is_hex(s[*i]) || s[*i] == ':'))
    (*i)++;
  if (*i == end)
    return fail(c, start - 1, "domain \"%.*s\": '[' without ']'", qlen(d.len),
                s + d.off);
  if (s[*i] != ']')
    return fail(c, *i,
                "domain \"%.*s\": invalid character %s in IPv6 address (only "
                "hex digits and ':' are allowed)",
                qlen(d.len), s + d.off, char_desc(s[*i], ch));
  if (*i == start)
    return fail(c, *i, "domain \"%.*s\": empty IPv6 address", qlen(d.len),
                s + d.off);
  (*i)++;
  return FL_OK;
}

static fl_code check_port(const ctx *c, span d, size_t i) {
  const char *s = c->in;
  size_t end = d.off + d.len;
  size_t start = ++i;
  char ch[8];
  while (i < end && is_digit(s[i]))
    i++;
  if (i < end)
    return fail(c, i, "domain \"%.*s\": invalid character %s in port",
                qlen(d.len), s + d.off, char_desc(s[i], ch));
  if (i == start)
    return fail(c, i, "domain \"%.*s\": empty port after ':'", qlen(d.len),
                s + d.off);
  return FL_OK;
}

static fl_code check_domain(const ctx *c, span d) {
  const char *s = c->in;
  size_t i = d.off;
  char ch[8];
  fl_code rc;
  if (s[i] == '[')
    rc = check_ipv6(c, d, &i);
  else
    rc = check_domain_name(c, d, &i);
  if (rc != FL_OK)
    return rc;
  if (i == d.off + d.len)
    return FL_OK;
  if (s[i] == ':')
    return check_port(c, d, i);
  return fail(c, i, "domain \"%.*s\": invalid character %s", qlen(d.len),
              s + d.off, char_desc(s[i], ch));
}

/* ---- path := component ("/" component)* -------------------------------- */

/* separator := [._] | "__" | "-"+ ; its length at i, 0 if none. */
static size_t separator_len(const char *s, size_t i, size_t end) {
  size_t n = 0;
  if (s[i] == '.')
    return 1;
  if (s[i] == '_')
    return (i + 1 < end && s[i + 1] == '_') ? 2 : 1;
  while (i + n < end && s[i + n] == '-')
    n++;
  return n;
}

/* The error for a character that cannot start an alpha-numeric run. */
static fl_code bad_path_char(const ctx *c, size_t i, size_t end, size_t sep) {
  const char *s = c->in;
  char ch[8];
  size_t n = 0;
  if (sep == NO_OFFSET && (i == end || s[i] == '/'))
    return fail(c, i, "empty path component in repository name");
  if (sep == NO_OFFSET && is_path_sep(s[i]))
    return fail(
        c, i,
        "path component must start with a lower-case letter or digit, not %s",
        char_desc(s[i], ch));
  if (i == end || s[i] == '/')
    return fail(c, sep, "path component must not end with a separator");
  if (is_path_sep(s[i])) {
    while (sep + n < end && is_path_sep(s[sep + n]))
      n++;
    return fail(c, sep,
                "invalid separator \"%.*s\" in repository name (allowed: '.', "
                "'_', '__' or a run of '-')",
                qlen(n), s + sep);
  }
  return fail(c, i, "invalid character %s in repository name (" REPO_CHARS ")",
              char_desc(s[i], ch));
}

/* alpha-numeric (separator alpha-numeric)*; *pos is advanced to the '/' or
 * the end that follows it. */
static fl_code check_component(const ctx *c, size_t *pos, size_t end) {
  const char *s = c->in;
  size_t i = *pos;
  size_t sep = NO_OFFSET;
  for (;;) {
    size_t run = i;
    while (run < end && is_lower_alnum(s[run]))
      run++;
    if (run == i)
      return bad_path_char(c, i, end, sep);
    i = run;
    if (i == end || s[i] == '/')
      break;
    sep = i;
    i += separator_len(s, i, end);
    if (i == sep)
      return bad_path_char(c, i, end, NO_OFFSET);
  }
  *pos = i;
  return FL_OK;
}

static fl_code check_path(const ctx *c, span p) {
  size_t end = p.off + p.len;
  size_t i = p.off;
  fl_code rc;
  for (size_t k = p.off; k < end; k++)
    if (is_upper(c->in[k]))
      return fail(c, k, "repository name must be lowercase");
  for (;;) {
    rc = check_component(c, &i, end);
    if (rc != FL_OK || i == end)
      return rc;
    i++; /* the '/' */
  }
}

/* ---- tag := [\w][\w.-]{0,127} ------------------------------------------- */

static fl_code check_tag(const ctx *c, span t) {
  const char *s = c->in;
  char ch[8];
  if (t.len == 0)
    return fail(c, t.off,
                c->kind == CTX_PART ? "invalid tag \"\": a tag must not be "
                                      "empty"
                                    : "empty tag after ':'");
  if (t.len > TAG_LEN_MAX)
    return fail(c, t.off, "invalid tag \"%.*s...\": longer than %d characters",
                qlen(t.len), s + t.off, TAG_LEN_MAX);
  if (!is_word(s[t.off]))
    return fail(
        c, t.off,
        "invalid tag \"%.*s\": must start with a letter, digit or '_', not %s",
        qlen(t.len), s + t.off, char_desc(s[t.off], ch));
  for (size_t i = t.off + 1; i < t.off + t.len; i++)
    if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
      return fail(c, i,
                  "invalid tag \"%.*s\": invalid character %s (" TAG_CHARS ")",
                  qlen(t.len), s + t.off, char_desc(s[i], ch));
  return FL_OK;
}

/* ---- digest := algorithm ":" hex ---------------------------------------- */

#define DIGEST_HINT "expected algorithm:hex, e.g. sha256:<64 hex digits>"

/* algorithm := [a-z0-9]+ ([+._-] [a-z0-9]+)*; returns the offset of the ':'
 * that ends it, or NO_OFFSET after filling the error. */
static size_t scan_algorithm(const ctx *c, span d) {
  const char *s = c->in;
  size_t end = d.off + d.len;
  size_t i = d.off;
  char ch[8];
  for (;;) {
    size_t start = i;
    while (i < end && is_lower_alnum(s[i]))
      i++;
    if (i == end) {
      fail(
          c, i,
          "invalid digest \"%.*s\": missing ':' between algorithm and hex; " DIGEST_HINT,
          qlen(d.len), s + d.off);
      return NO_OFFSET;
    }
    if (i == d.off && s[i] == ':') {
      fail(c, i,
           "invalid digest \"%.*s\": no algorithm before ':'; " DIGEST_HINT,
           qlen(d.len), s + d.off);
      return NO_OFFSET;
    }
    if (i == start) {
      fail(c, i, "invalid digest \"%.*s\": invalid character %s in algorithm",
           qlen(d.len), s + d.off, char_desc(s[i], ch));
      return NO_OFFSET;
    }
    if (s[i] == ':')
      return i;
    if (!strchr("+._-", s[i])) {
      fail(c, i, "invalid digest \"%.*s\": invalid character %s in algorithm",
           qlen(d.len), s + d.off, char_desc(s[i], ch));
      return NO_OFFSET;
    }
    i++;
  }
}

/* hex := [0-9a-fA-F]+, then what the algorithm demands: one digest.c
 * supports (its table says how long its hex is), exactly that long, and
 * lower-case. */
static fl_code check_digest_hex(const ctx *c, span d, span alg, span hex,
                                fl_digest_alg *out) {
  const char *s = c->in;
  fl_digest_alg a = FL_SHA256;
  char ch[8];
  for (size_t i = hex.off; i < hex.off + hex.len; i++)
    if (!is_hex(s[i]))
      return fail(c, i, "invalid digest \"%.*s\": invalid character %s in hex",
                  qlen(d.len), s + d.off, char_desc(s[i], ch));
  if (hex.len == 0)
    return fail(c, hex.off,
                "invalid digest \"%.*s\": no hex after ':'; " DIGEST_HINT,
                qlen(d.len), s + d.off);
  if (fl_digest_alg_from_name(s + alg.off, alg.len, &a) != FL_OK)
    return fail_code(
        c, c->kind == CTX_PART ? FL_EUNSUPPORTED : FL_EINVALID, alg.off,
        "invalid digest \"%.*s\": unsupported digest algorithm \"%.*s\" "
        "(supported: sha256, sha512)",
        qlen(d.len), s + d.off, qlen(alg.len), s + alg.off);
  size_t want = fl_digest_hex_len(a);
  if (hex.len != want)
    return fail(
        c, hex.off,
        "invalid digest \"%.*s\": %.*s hex must be %zu characters, got %zu",
        qlen(d.len), s + d.off, (int)alg.len, s + alg.off, want, hex.len);
  for (size_t i = hex.off; i < hex.off + hex.len; i++)
    if (!is_lower_hex(s[i]))
      return fail(c, i, "invalid digest \"%.*s\": hex must be lower-case",
                  qlen(d.len), s + d.off);
  if (out)
    *out = a;
  return FL_OK;
}

static fl_code check_digest(const ctx *c, span d, fl_digest_alg *alg) {
  size_t colon;
  if (d.len == 0)
    return fail(c, d.off,
                c->kind == CTX_PART ? "invalid digest \"\": empty; " DIGEST_HINT
                                    : "empty digest after '@'");
  colon = scan_algorithm(c, d);
  if (colon == NO_OFFSET)
    return FL_EINVALID;
  span alg_span = {d.off, colon - d.off};
  span hex = {colon + 1, d.off + d.len - colon - 1};
  return check_digest_hex(c, d, alg_span, hex, alg);
}

/* ---- assembling the fl_ref ---------------------------------------------- */

static void copy_span(char *dst, const char *in, span s) {
  memcpy(dst, in + s.off, s.len);
  dst[s.len] = '\0';
}

/* Normalise a checked domain and path into out. */
static fl_code store_name(const ctx *c, span dom, span rem, fl_ref *out) {
  int hub = dom.len == 0 || span_eq(c->in, dom, docker_domain) ||
            span_eq(c->in, dom, docker_legacy);
  size_t dom_len = hub ? sizeof docker_domain - 1 : dom.len;
  int official = hub && !span_has(c->in, rem, '/');
  size_t path_len = (official ? sizeof library - 1 : 0) + rem.len;
  if (dom_len + 1 + path_len > NAME_LEN_MAX)
    return fail(c, NO_OFFSET,
                "repository name must not be more than %d characters "
                "(\"domain/path\" is %zu)",
                NAME_LEN_MAX, dom_len + 1 + path_len);
  if (hub)
    strcpy(out->domain, docker_domain);
  else
    copy_span(out->domain, c->in, dom);
  strcpy(out->api_host, hub ? docker_api : out->domain);
  strcpy(out->path, official ? library : "");
  copy_span(out->path + strlen(out->path), c->in, rem);
  return FL_OK;
}

static fl_code parse_name(const ctx *c, span name, fl_ref *out) {
  span dom, rem;
  fl_code rc;
  if (name.len == 0)
    return fail(c, name.off,
                "repository name must have at least one component");
  split_domain(c->in, name, &dom, &rem);
  if (dom.len > 0 && (rc = check_domain(c, dom)) != FL_OK)
    return rc;
  if ((rc = check_path(c, rem)) != FL_OK)
    return rc;
  return store_name(c, dom, rem, out);
}

/* Common front: transport prefix, empty input, image IDs, splitting. */
static fl_code prepare(const ctx *c, parts *p) {
  size_t start;
  if (c->in[0] == '\0')
    return fail(c, NO_OFFSET, "empty reference");
  start = skip_transport(c->in);
  if (c->in[start] == '\0')
    return fail(c, start, "empty reference after \"%s\"", transport);
  if (is_identifier(c->in + start))
    return fail(
        c, start,
        "a 64-character hex string is an image ID, not a repository name");
  split_parts(c->in, start, p);
  return FL_OK;
}

static fl_code parse_ref(const ctx *c, fl_ref *out) {
  parts p = {0};
  fl_code rc;
  if ((rc = prepare(c, &p)) != FL_OK ||
      (rc = parse_name(c, p.name, out)) != FL_OK)
    return rc;
  if (p.has_tag && (rc = check_tag(c, p.tag)) != FL_OK)
    return rc;
  if (p.has_digest && (rc = check_digest(c, p.digest, NULL)) != FL_OK)
    return rc;
  if (p.has_tag)
    copy_span(out->tag, c->in, p.tag);
  if (p.has_digest)
    copy_span(out->digest, c->in, p.digest);
  if (!p.has_tag && !p.has_digest) {
    strcpy(out->tag, default_tag);
    out->tag_defaulted = 1;
  }
  return FL_OK;
}

static fl_code parse_repo(const ctx *c, fl_ref *out) {
  parts p = {0};
  fl_code rc;
  if ((rc = prepare(c, &p)) != FL_OK)
    return rc;
  if (p.has_digest)
    return fail(c, p.digest.off - 1,
                "a repository name must not include a digest");
  if (p.has_tag)
    return fail(c, p.tag.off - 1,
                "a repository name must not include a tag (\"%.*s\")",
                qlen(p.tag.len), c->in + p.tag.off);
  return parse_name(c, p.name, out);
}

typedef fl_code (*parse_fn)(const ctx *c, fl_ref *out);

static fl_code run_parse(parse_fn fn, const char *s, fl_ref *out,
                         fl_error *err) {
  ctx c = {s, err, CTX_REFERENCE};
  fl_code rc;
  if (!out)
    return fl_error_set(err, FL_EINVALID, "invalid reference: no output");
  memset(out, 0, sizeof *out);
  if (!s)
    return fl_error_set(err, FL_EINVALID, "invalid reference: NULL string");
  rc = fn(&c, out);
  if (rc != FL_OK)
    memset(out, 0, sizeof *out);
  return rc;
}

fl_code fl_ref_parse(const char *s, fl_ref *out, fl_error *err) {
  return run_parse(parse_ref, s, out, err);
}

fl_code fl_ref_parse_repository(const char *s, fl_ref *out, fl_error *err) {
  return run_parse(parse_repo, s, out, err);
}

/* ---- one production alone ----------------------------------------------- */

fl_code fl_ref_check_repository(const char *s, fl_error *err) {
  ctx c = {s ? s : "", err, CTX_REPOSITORY};
  size_t n = strlen(c.in);
  if (n == 0)
    return fail(&c, NO_OFFSET,
                "repository name must have at least one component");
  if (n > NAME_LEN_MAX)
    return fail(&c, NO_OFFSET,
                "repository name must not be more than %d characters (it is "
                "%zu)",
                NAME_LEN_MAX, n);
  return check_path(&c, (span){0, n});
}

fl_code fl_ref_check_tag(const char *s, fl_error *err) {
  ctx c = {s ? s : "", err, CTX_PART};
  return check_tag(&c, (span){0, strlen(c.in)});
}

fl_code fl_ref_check_digest(const char *s, fl_digest_alg *alg, fl_error *err) {
  ctx c = {s ? s : "", err, CTX_PART};
  return check_digest(&c, (span){0, strlen(c.in)}, alg);
}

fl_code fl_ref_check_reference(const char *s, int *is_digest, fl_error *err) {
  int digest = s && strchr(s, ':') != NULL;
  if (is_digest)
    *is_digest = digest;
  if (!s || !*s)
    return fl_error_set(err, FL_EINVALID,
                        "empty tag or digest (expected a tag such as "
                        "\"latest\" or a digest sha256:<64 hex digits>)");
  return digest ? fl_ref_check_digest(s, NULL, err) : fl_ref_check_tag(s, err);
}

/* ---- formatting --------------------------------------------------------- */

static size_t fmt_len(int n) { return n < 0 ? 0 : (size_t)n; }

/* "<domain>/" or "" , path, ":tag" or "", "@digest" or "". */
static size_t format_parts(const char *domain, const char *path,
                           const char *tag, const char *digest, char *buf,
                           size_t n) {
  return fmt_len(snprintf(buf, n, "%s%s%s%s%s%s%s", domain, *domain ? "/" : "",
                          path, *tag ? ":" : "", tag, *digest ? "@" : "",
                          digest));
}

size_t fl_ref_format(const fl_ref *r, char *buf, size_t n) {
  return format_parts(r->domain, r->path, r->tag, r->digest, buf, n);
}

size_t fl_ref_name(const fl_ref *r, char *buf, size_t n) {
  return format_parts(r->domain, r->path, "", "", buf, n);
}

size_t fl_ref_familiar(const fl_ref *r, char *buf, size_t n) {
  const char *domain = r->domain;
  const char *path = r->path;
  size_t lib = sizeof library - 1;
  if (strcmp(domain, docker_domain) == 0) {
    domain = "";
    /* "library/<64 hex>" keeps its namespace: bare, it would be an ID */
    if (strncmp(path, library, lib) == 0 && !strchr(path + lib, '/') &&
        !is_identifier(path + lib))
      path += lib;
  }
  return format_parts(domain, path, r->tag_defaulted ? "" : r->tag, r->digest,
                      buf, n);
}

/* ---- loopback ----------------------------------------------------------- */

/* "" or ":" digits+ */
static int is_port_suffix(const char *s) {
  if (*s == '\0')
    return 1;
  if (*s++ != ':' || !is_digit(*s))
    return 0;
  while (is_digit(*s))
    s++;
  return *s == '\0';
}

/* One dotted-quad octet, no leading zeros; *s is advanced. -1 if bad. */
static int ipv4_octet(const char **s) {
  int v = 0;
  int digits = 0;
  const char *p = *s;
  while (is_digit(*p) && digits < 4) {
    v = v * 10 + (*p++ - '0');
    digits++;
  }
  if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && **s == '0'))
    return -1;
  *s = p;
  return v;
}

/* 127.x.y.z[:port] */
static int ipv4_is_loopback(const char *s) {
  for (int k = 0; k < 4; k++) {
    int v = ipv4_octet(&s);
    if (v < 0 || (k == 0 && v != 127))
      return 0;
    if (k < 3 && *s++ != '.')
      return 0;
  }
  return is_port_suffix(s);
}

/* One IPv6 group of 1-4 hex digits at s[*i]; -1 if none. */
static long ipv6_group(const char *s, size_t *i, size_t n) {
  long v = 0;
  size_t start = *i;
  while (*i < n && *i - start < 4 && is_hex(s[*i])) {
    char ch = s[*i];
    v = v * 16 + (is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10);
    (*i)++;
  }
  if (*i == start || (*i < n && is_hex(s[*i])))
    return -1;
  return v;
}

/* Whether s[0..n) spells ::1: seven zero groups then 1, "::" allowed once. */
static int ipv6_is_loopback(const char *s, size_t n) {
  long groups[8] = {0};
  size_t count = 0, i = 0;
  int gap = -1;
  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  }
  while (i < n) {
    long v = ipv6_group(s, &i, n);
    if (v < 0 || count == 8)
      return 0;
    groups[count++] = v;
    if (i == n)
      break;
    if (s[i++] != ':' || i == n)
      return 0;
    if (s[i] == ':') {
      if (gap >= 0)
        return 0;
      gap = (int)count;
      i++;
    }
  }
  if (count == 0 || (gap < 0 && count != 8) || (gap >= 0 && count > 7) ||
      (gap >= 0 && (size_t)gap == count) || groups[count - 1] != 1)
    return 0;
  for (size_t k = 0; k + 1 < count; k++)
    if (groups[k] != 0)
      return 0;
  return 1;
}

/* "localhost" in any case, then "" or ":port". */
static int is_localhost(const char *s) {
  const char *want = "localhost";
  for (; *want; s++, want++)
    if ((*s | 0x20) != *want)
      return 0;
  return is_port_suffix(s);
}

int fl_host_is_loopback(const char *host) {
  const char *close;
  if (!host)
    return 0;
  if (is_localhost(host))
    return 1;
  if (host[0] == '[') {
    close = strchr(host, ']');
    return close && ipv6_is_loopback(host + 1, (size_t)(close - host - 1)) &&
           is_port_suffix(close + 1);
  }
  return ipv4_is_loopback(host);
}
