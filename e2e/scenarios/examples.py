#!/usr/bin/env python3
"""Every packaged example policy in scripts/examples/, run through the real
binary against loopback registries, with its effect checked independently
(direct HTTP to the registries, skopeo for the copied images): not just its
exit status."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("FREIGHTLINER_BIN", os.path.join(ROOT, "bin", "freightliner"))


def example(ctx, name, *args):
    return ctx.run([BIN, "run", os.path.join(ROOT, "scripts", "examples", name)] + list(args))


def digests(reg, repo):
    out = {}
    for tag in reg.tags(repo):
        status, _, _, digest = reg.manifest(repo, tag)
        if status == 200:
            out[tag] = digest
    return out


@scenario(weight=3)
def example_mirror_and_verify(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    r = example(ctx, "mirror.lua", src.host, dst.host, "project-b/*", "mirror")
    check(r.status == 0, "mirror.lua failed: %r", r)
    for repo in ("project-b/tool", "project-b/dmulti"):
        want, have = digests(src, repo), digests(dst, "mirror/" + repo)
        check(want == have, "mirror/%s: %s, want %s", repo, have, want)
        for tag in want:
            verify.same_image(ctx, src, repo, tag, dst, "mirror/" + repo, tag)
    check(dst.tags("project-a/app") == [], "mirror.lua copied outside its pattern")
    r = example(ctx, "verify.lua", src.host, dst.host, "project-b/*", "mirror")
    check(r.status == 0 and "0 missing, 0 different" in r.out, "verify.lua: %r", r)
    # verify.lua notices a difference
    r = example(ctx, "verify.lua", src.host, dst.host, "project-a/*", "mirror")
    check(r.status == 1 and "missing" in r.out, "verify.lua should report missing tags: %r", r)


@scenario(weight=2)
def example_keep_latest(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    r = example(ctx, "keep_latest.lua", src.host + "/project-a/web", dst.host + "/kept/web", "2")
    check(r.status == 0, "keep_latest.lua failed: %r", r)
    check(dst.tags("kept/web") == ["v1.1", "v2.0"], "kept tags: %s", dst.tags("kept/web"))
    verify.same_image(ctx, src, "project-a/web", "v2.0", dst, "kept/web", "v2.0")


@scenario(weight=2)
def example_promote_by_label(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    r = example(ctx, "promote_by_label.lua", src.host + "/project-a/app", dst.host + "/prod/app",
                "org.opencontainers.image.version=v1.1")
    check(r.status == 0 and "1 promoted" in r.out, "promote_by_label.lua: %r", r)
    check(dst.tags("prod/app") == ["v1.1"], "promoted tags: %s", dst.tags("prod/app"))
    verify.same_image(ctx, src, "project-a/app", "v1.1", dst, "prod/app", "v1.1")


@scenario(weight=2)
def example_multiarch_subset(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    r = example(ctx, "multiarch_subset.lua", src.host + "/project-a/multi:v1", dst.host + "/sub/multi:v1",
                "linux/amd64", "linux/arm64")
    check(r.status == 0, "multiarch_subset.lua failed: %r", r)
    status, raw, _, digest = dst.manifest("sub/multi", "v1")
    check(status == 200, "no sub/multi:v1 at the destination")
    index = json.loads(raw)
    archs = sorted(m["platform"]["architecture"] for m in index["manifests"])
    check(archs == ["amd64", "arm64"], "platforms at the destination: %s", archs)
    _, _, _, src_digest = src.manifest("project-a/multi", "v1")
    check(digest != src_digest, "a filtered index must have a new digest")
    for m in index["manifests"]:
        check(dst.head_manifest("sub/multi", m["digest"]) == 200, "child %s missing", m["digest"])
    ok, err = verify.skopeo_pull(ctx, dst, "sub/multi", "v1")
    check(ok, "skopeo cannot copy the filtered index sub/multi:v1: %s", err)


@scenario(weight=2)
def example_ratelimited_mirror(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    # the source behind a proxy that records when each request arrived: the
    # limit is measured where it matters, at the registry
    proxy = ctx.faultproxy(src, [])
    rps = 5
    r = example(ctx, "ratelimited_mirror.lua", proxy.host, dst.host, "project-a/web", str(rps))
    check(r.status == 0, "ratelimited_mirror.lua failed: %r", r)
    check(digests(dst, "project-a/web") == digests(src, "project-a/web"), "project-a/web differs")
    ts = sorted(q["ts"] for q in proxy.requests())
    check(len(ts) >= 2 * rps, "too few source requests to measure a rate: %d", len(ts))
    # a token bucket of RPS tokens refilled at RPS per second: any run of
    # requests i..j fits in RPS (the burst) + RPS * (t_j - t_i), give or take
    # one request and the proxy's millisecond timestamps
    worst = max((j - i + 1) - (rps + rps * (ts[j] - ts[i] + 0.002))
                for i in range(len(ts)) for j in range(i, len(ts)))
    check(worst <= 1, "the source saw more than %d requests per second (+ a burst of %d): "
          "%d requests over %.2f s, %.1f over the budget", rps, rps, len(ts), ts[-1] - ts[0], worst)
    ctx.note("%d source requests over %.2f s at %d/s", len(ts), ts[-1] - ts[0], rps)
