#!/usr/bin/env python3
"""Error handling through fl.copy: a repository or tag that does not exist,
an unreachable registry (127.0.0.1:1) on either side. Each fails fast, with
a stable code and a message that names what failed; nothing is written."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402


def one_failure(ctx, src, dst, regs, codes, names, limit):
    r, results, _ = ctx.copy([{"src": src, "dst": dst}], registries=regs, timeout=120)
    res = results.get(src + " -> " + dst)
    check(r.status == 1, "exit status %s, want 1: %r", r.status, r)
    check(res is not None and not res["ok"], "no failure reported: %r", r)
    check(res["code"] in codes, "%s -> %s: code %s, want %s: %s", src, dst, res["code"], "/".join(codes),
          res["error"])
    for n in names:
        check(n in res["error"], "%s -> %s: the message does not name %s: %s", src, dst, n, res["error"])
    limit *= e2e.time_scale()  # sanitizer builds are slower
    check(r.seconds < limit, "%s -> %s took %.1fs (limit %ds)", src, dst, r.seconds, limit)
    ctx.log("%s -> %s: %s %s in %.1fs", src, dst, res["code"], res["error"], r.seconds)
    return res


@scenario(weight=3)
def error_nonexistent_repository(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    regs = {src.host: src.lua_options(), dst.host: dst.lua_options()}
    one_failure(ctx, "%s/no/such-repo:v1" % src.host, "%s/no/such-repo:v1" % dst.host, regs,
                ("NOT_FOUND",), ["no/such-repo"], 10)
    one_failure(ctx, "%s/project-a/app:no-such-tag" % src.host, "%s/project-a/app:no-such-tag" % dst.host,
                regs, ("NOT_FOUND",), ["project-a/app", "no-such-tag"], 10)
    check(dst.catalog() == [], "the destination has repositories after failed copies: %s", dst.catalog())


@scenario(weight=3)
def error_unreachable_registry(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    regs = {src.host: src.lua_options(), dst.host: dst.lua_options()}
    one_failure(ctx, "127.0.0.1:1/team/app:v1", "%s/team/app:v1" % dst.host, regs,
                ("UNREACHABLE",), ["127.0.0.1:1"], 20)
    one_failure(ctx, "%s/project-a/app:v1.0" % src.host, "127.0.0.1:1/team/app:v1.0", regs,
                ("UNREACHABLE",), ["127.0.0.1:1"], 20)
    check(dst.catalog() == [], "the destination has repositories after failed copies: %s", dst.catalog())
    # the good copy in the same process still works afterwards
    img = {"src": "%s/project-a/app:v1.0" % src.host, "dst": "%s/after/app:v1.0" % dst.host}
    r, results, _ = ctx.copy([{"src": "127.0.0.1:1/team/app:v1", "dst": "%s/team/app:v1" % dst.host}, img],
                             registries=regs, concurrency=2)
    res = results.get(img["src"] + " -> " + img["dst"])
    check(res and res["ok"], "a good image failed next to an unreachable one: %r", r)
    verify.same_image(ctx, src, "project-a/app", "v1.0", dst, "after/app", "v1.0")


if __name__ == "__main__":
    e2e.standalone(__file__)
