#!/usr/bin/env python3
"""Authentication and TLS: Basic (htpasswd, password_env), the Bearer token
flow, TLS with the generated CA (ca_file), mutual TLS, and the failures:
wrong credentials, an unknown CA, a missing client certificate."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

PW_ENV = "E2E_REGISTRY_PASSWORD"


def no_secret(ctx, reg, *results):
    if reg.password:
        for r in results:
            check(reg.password not in r.out and reg.password not in r.err,
                  "the password of %s appears in Freightliner's output", reg.host)


def through(ctx, mode, concurrency=4):
    """Copy into a `mode` registry and back out of it into a plain one."""
    src, _ = ctx.shared("small")
    reg, plain = ctx.registries(mode, "plain")
    env = {PW_ENV: reg.password} if reg.password else {}
    regs = {src.host: src.lua_options(), reg.host: reg.lua_options(PW_ENV),
            plain.host: plain.lua_options()}
    cases = [("project-a/app", "v1.0"), ("project-a/multi", "v1")]
    r1, res1, _ = ctx.copy([{"src": "%s/%s:%s" % (src.host, rp, t), "dst": "%s/%s:%s" % (reg.host, rp, t)}
                            for rp, t in cases], registries=regs, env=env, concurrency=concurrency)
    check(r1.status == 0, "copy into the %s registry failed: %r", mode, r1)
    r2, res2, _ = ctx.copy([{"src": "%s/%s:%s" % (reg.host, rp, t), "dst": "%s/back/%s:%s" % (plain.host, rp, t)}
                            for rp, t in cases], registries=regs, env=env, concurrency=concurrency)
    check(r2.status == 0, "copy out of the %s registry failed: %r", mode, r2)
    no_secret(ctx, reg, r1, r2)
    for rp, t in cases:
        verify.same_image(ctx, src, rp, t, reg, rp, t)
        verify.same_image(ctx, src, rp, t, plain, "back/" + rp, t)
    return src, reg, plain, regs


def expect_failure(ctx, src, reg, regs, env, codes, what):
    img = "%s/project-a/app:v1.0" % src.host
    dst = "%s/denied/app:v1.0" % reg.host
    r, results, _ = ctx.copy([{"src": img, "dst": dst}], registries=regs, env=env, timeout=60)
    res = results.get(img + " -> " + dst)
    check(r.status == 1 and res is not None and not res["ok"], "%s: the copy did not fail: %r", what, r)
    check(res["code"] in codes, "%s: code %s, want %s: %s", what, res["code"], "/".join(codes), res["error"])
    check(reg.host in res["error"], "%s: the message does not name the registry %s: %s", what, reg.host,
          res["error"])
    check(r.seconds < 30, "%s: took %.1fs", what, r.seconds)
    check(reg.head_manifest("denied/app", "v1.0") == 404, "%s: the tag exists anyway", what)
    return res


@scenario(weight=6)
def auth_htpasswd_basic(ctx):
    through(ctx, "htpasswd")


@scenario(weight=6)
def auth_htpasswd_concurrent(ctx):
    # regression: concurrent first requests to a Basic-auth registry were
    # refused ("refused the username and password") when a request left
    # before another thread had set the credentials (fixed in abe655b)
    src, _ = ctx.shared("small")
    reg = ctx.registry("htpasswd")
    regs = {src.host: src.lua_options(), reg.host: reg.lua_options(PW_ENV)}
    cases = [("project-a/app", "v1.0"), ("project-a/web", "v1.1"), ("project-a/multi", "v1"),
             ("project-b/tool", "v2.0")]
    for attempt in range(3):  # fresh connections each time: the race is at the first requests
        r, _, _ = ctx.copy([{"src": "%s/%s:%s" % (src.host, rp, t),
                             "dst": "%s/try%d/%s:%s" % (reg.host, attempt, rp, t)} for rp, t in cases],
                           registries=regs, env={PW_ENV: reg.password}, concurrency=4)
        check(r.status == 0, "concurrent copies into a htpasswd registry, attempt %d: %s", attempt + 1,
              " | ".join(l for l in r.out.splitlines() if '"ok":false' in l)[:1500])
        for rp, t in cases:
            verify.same_image(ctx, src, rp, t, reg, "try%d/%s" % (attempt, rp), t)


@scenario(weight=6)
def auth_token_bearer(ctx):
    # one image at a time: see auth_token_concurrent
    through(ctx, "token", concurrency=1)


@scenario(weight=6)
def auth_token_over_tls(ctx):
    through(ctx, "token-tls", concurrency=1)


TOKEN_RACE = (
    "concurrent 401s on one Bearer scope: each failing request calls forget_auth() "
    "(src/registry/http.c), which drops the token another thread has just fetched; a request "
    "can use up its re-authentications and fail with 'answered HTTP 401' (intermittent, about "
    "1 run in 10 under CPU load)",
    "answered HTTP 401", True)


@scenario(weight=10)
def auth_token_concurrent(ctx):
    src, _ = ctx.shared("small")
    reg = ctx.registry("token")
    regs = {src.host: src.lua_options(), reg.host: reg.lua_options(PW_ENV)}
    cases = [("project-a/app", "v1.0"), ("project-a/multi", "v1"), ("project-a/web", "v1.1"),
             ("project-b/dmulti", "v1")]
    for attempt in range(3 if ctx.quick else 10):
        r, _, _ = ctx.copy([{"src": "%s/%s:%s" % (src.host, rp, t),
                             "dst": "%s/try%d/%s:%s" % (reg.host, attempt, rp, t)} for rp, t in cases],
                           registries=regs, env={PW_ENV: reg.password}, concurrency=4)
        check(r.status == 0, "concurrent copies into a token registry, attempt %d: %s", attempt + 1,
              " | ".join(l for l in r.out.splitlines() if '"ok":false' in l)[:1500])
    for rp, t in cases:
        verify.same_image(ctx, src, rp, t, reg, "try0/" + rp, t)


@scenario(weight=6)
def auth_tls_ca_file(ctx):
    src, reg, _, regs = through(ctx, "tls")
    # without the CA the certificate is not trusted
    regs = dict(regs)
    regs[reg.host] = {}
    res = expect_failure(ctx, src, reg, regs, {}, ("TLS",), "TLS without ca_file")
    ctx.log("TLS without CA: %s", res["error"])


@scenario(weight=6)
def auth_mtls_client_certificate(ctx):
    src, reg, _, regs = through(ctx, "mtls")
    regs = dict(regs)
    regs[reg.host] = {"ca_file": reg.ca}
    res = expect_failure(ctx, src, reg, regs, {}, ("TLS", "UNAUTHORIZED", "UNREACHABLE"),
                         "mTLS without a client certificate")
    ctx.log("mTLS without client cert: %s", res["error"])


@scenario(weight=6)
def auth_wrong_credentials(ctx):
    src, _ = ctx.shared("small")
    basic, token = ctx.registries("htpasswd", "token")
    for reg in (basic, token):
        regs = {src.host: src.lua_options(), reg.host: reg.lua_options(PW_ENV)}
        res = expect_failure(ctx, src, reg, regs, {PW_ENV: "not-the-password"}, ("UNAUTHORIZED",),
                             "%s with a wrong password" % reg.mode)
        check("not-the-password" not in res["error"], "the wrong password is echoed: %s", res["error"])
        # no credentials at all
        regs[reg.host] = {"insecure": True}
        expect_failure(ctx, src, reg, regs, {}, ("UNAUTHORIZED", "DENIED"),
                       "%s without credentials" % reg.mode)
        # and as a source
        img = "%s/project-a/app:v1.0" % reg.host
        dst = "oci:%s:app" % ctx.tmp("layout")
        r, results, _ = ctx.copy([{"src": img, "dst": dst}],
                                 registries={reg.host: reg.lua_options(PW_ENV)},
                                 env={PW_ENV: "not-the-password"}, timeout=60)
        res = results.get(img + " -> " + dst)
        check(res and not res["ok"] and res["code"] == "UNAUTHORIZED" and reg.host in res["error"],
              "%s as a source with a wrong password: %r", reg.mode, r)


if __name__ == "__main__":
    e2e.standalone(__file__)
