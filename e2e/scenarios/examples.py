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


# ---- the example sync files (scripts/examples/*.yaml): validated, then run
# ---- with `freightliner sync` against local registries, effect checked here.

def sync_example(ctx, name, env, *args):
    path = os.path.join(ROOT, "scripts", "examples", name)
    r = ctx.run([BIN, "validate-config", path], env=env)
    check(r.status == 0 and ": valid (" in r.out and "invalid" not in r.out, "validate-config %s: %r", name, r)
    return ctx.run([BIN, "sync", "--config", path, "--no-progress"] + list(args), env=env)


def platforms_of(reg, repo, tag):
    status, raw, _, _ = reg.manifest(repo, tag)
    check(status == 200, "no %s:%s", repo, tag)
    return sorted(m["platform"]["architecture"] for m in json.loads(raw)["manifests"])


@scenario(weight=3)
def example_sync_dockerhub_mirror(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    env = {"SRC_REGISTRY": src.host, "DST_REGISTRY": dst.host, "MIRROR_PATTERN": "project-a/*",
           "MIRROR_LATEST": "2"}
    r = sync_example(ctx, "dockerhub_mirror.yaml", env)
    check(r.status == 0, "dockerhub_mirror.yaml: %r", r)
    for repo in ("project-a/app", "project-a/web"):
        check(dst.tags("hub/" + repo) == ["latest", "v1.1", "v2.0"], "hub/%s: %s", repo, dst.tags("hub/" + repo))
        verify.same_image(ctx, src, repo, "v2.0", dst, "hub/" + repo, "v2.0")
    check(platforms_of(dst, "hub/project-a/multi", "v1") == ["amd64", "arm64"], "platforms of hub/project-a/multi")
    check(dst.tags("hub/project-b/tool") == [], "copied outside MIRROR_PATTERN")


@scenario(weight=3)
def example_sync_promotion(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    env = {"STAGING": src.host, "PROD": dst.host, "PROMOTE_DENY": "v1.0"}
    r = sync_example(ctx, "promotion.yaml", env)
    check(r.status == 0, "promotion.yaml: %r", r)
    for name in ("app", "web"):
        check(dst.tags("release/" + name) == ["v1.1-stable", "v2.0-stable"], "release/%s: %s", name,
              dst.tags("release/" + name))
        verify.same_image(ctx, src, "project-a/" + name, "v1.1", dst, "release/" + name, "v1.1-stable")
    check("promoted " in r.err, "on_done hook did not run: %r", r)
    # the dry run explains: the policy filter dropped v1.0, the regex "latest"
    r = sync_example(ctx, "promotion.yaml", env, "--dry-run")
    check(r.status == 0, "promotion.yaml --dry-run: %r", r)
    check("project-a/app:v1.0 (policy filter: not approved for production)" in r.out, "dry run: %s", r.out)
    check("project-a/app:latest (tags.regex:" in r.out, "dry run: %s", r.out)


@scenario(weight=3)
def example_sync_airgap_export(ctx):
    src, _ = ctx.shared("small")
    layout = os.path.join(ctx.tmp("export"), "layout")
    env = {"SRC_REGISTRY": src.host, "EXPORT_DIR": layout}
    r = sync_example(ctx, "airgap_export.yaml", env)
    check(r.status == 0, "airgap_export.yaml: %r", r)
    with open(os.path.join(layout, "index.json")) as f:
        names = sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(f)["manifests"])
    check(names == ["app-v1.1", "app-v2.0", "tool-v1.1", "tool-v2.0"], "layout tags: %s", names)
    # and back into a registry, as the air-gapped site would
    dst = ctx.registry()
    r = ctx.fl("replicate", "oci:%s:app-v2.0" % layout, "%s/imported/app:v2.0" % dst.host, "--no-progress")
    check(r.status == 0, "import from the layout: %r", r)
    verify.same_image(ctx, src, "project-a/app", "v2.0", dst, "imported/app", "v2.0")


@scenario(weight=3)
def example_sync_prune(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    env = {"SRC_REGISTRY": src.host, "DST_REGISTRY": dst.host, "PRUNE_PATTERN": "project-a/*"}
    r = sync_example(ctx, "prune_mirror.yaml", env)
    check(r.status == 0, "prune_mirror.yaml: %r", r)
    check(dst.tags("mirror/project-a/app") == ["v1.0", "v1.1", "v2.0"], "first run: %s", dst.tags("mirror/project-a/app"))
    # the rules change: v1.* no longer wanted (4 tags in app and web)
    env.update({"PRUNE_EXCLUDE": "v1.*", "PRUNE_MAX": "3"})
    r = sync_example(ctx, "prune_mirror.yaml", env, "--dry-run")
    check(r.status == 1 and "over the limit of 3" in r.out, "guardrail in the dry run: %r", r)
    r = sync_example(ctx, "prune_mirror.yaml", env)
    check(r.status == 1 and "nothing was deleted" in r.err, "guardrail: %r", r)
    check(dst.tags("mirror/project-a/app") == ["v1.0", "v1.1", "v2.0"], "the guardrail deleted something")
    metrics = os.path.join(ctx.tmp("prune"), "m.json")
    r = sync_example(ctx, "prune_mirror.yaml", env, "--force-prune", "--metrics-file", metrics)
    check(r.status == 0, "--force-prune: %r", r)
    for repo in ("mirror/project-a/app", "mirror/project-a/web"):
        check(dst.tags(repo) == ["v2.0"], "%s after prune: %s", repo, dst.tags(repo))
    with open(metrics) as f:
        check(json.load(f)["tags_deleted"] == 4, "tags_deleted")
