#!/usr/bin/env python3
"""fl.copy between plain registries and OCI layouts, checked with skopeo:
Docker and OCI images, Docker manifest lists, whole multi-arch indexes, a
platform subset, OCI layout round trips, mounts, re-runs, a corrupted
source blob."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def seeded(images, repo, tag):
    for i in images:
        if i["repository"] == repo and i["tag"] == tag:
            return i
    raise e2e.Failure("the seed has no %s:%s" % (repo, tag))


def regopts(*regs):
    return {r.host: r.lua_options() for r in regs}


@scenario(weight=5)
def copy_docker_oci_and_manifest_list(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    cases = [("project-a/app", "v1.0", D_MANIFEST), ("project-a/app", "v1.1", OCI_MANIFEST),
             ("project-b/dmulti", "v1", D_LIST)]
    jobs = [{"src": "%s/%s:%s" % (src.host, r, t), "dst": "%s/%s:%s" % (dst.host, r, t)}
            for r, t, _ in cases]
    results, _ = ctx.copy_ok(jobs, registries=regopts(src, dst))
    for (repo, tag, mt), res in zip(cases, results):
        img = seeded(images, repo, tag)
        check(img["media_type"] == mt, "seed: %s:%s is %s", repo, tag, img["media_type"])
        check(res["digest"] == img["digest"], "%s:%s: result digest %s, seeded %s", repo, tag,
              res["digest"], img["digest"])
        check(not res["up_to_date"] and res["blobs_copied"] > 0, "%s:%s: nothing copied: %s",
              repo, tag, res)
        status, _, dmt, _ = dst.manifest(repo, tag)
        check(status == 200 and dmt == mt, "%s:%s at the destination: HTTP %s, media type %s (want %s)",
              repo, tag, status, dmt, mt)
        verify.same_image(ctx, src, repo, tag, dst, repo, tag)


@scenario(weight=4)
def copy_index_whole(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    img = seeded(images, "project-a/multi", "v1")
    (res,), _ = ctx.copy_ok([{"src": "%s/project-a/multi:v1" % src.host,
                              "dst": "%s/project-a/multi:v1" % dst.host}], registries=regopts(src, dst))
    check(res["digest"] == img["digest"], "index digest %s, seeded %s", res["digest"], img["digest"])
    check(res["manifests_pushed"] == 4, "manifests pushed: %s (index + 3 children)", res["manifests_pushed"])
    check(not res.get("index_rewritten"), "a whole index must not be rewritten")
    status, data, mt, _ = dst.manifest("project-a/multi", "v1")
    check(status == 200 and mt == OCI_INDEX, "destination index: HTTP %s %s", status, mt)
    for child in json.loads(data)["manifests"]:
        check(dst.head_manifest("project-a/multi", child["digest"]) == 200,
              "child %s missing at the destination", child["digest"])
    verify.same_image(ctx, src, "project-a/multi", "v1", dst, "project-a/multi", "v1")


@scenario(weight=4)
def copy_index_platform_filter(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    img = seeded(images, "project-a/multi", "v1")
    want = ["linux/amd64", "linux/arm/v7"]
    (res,), _ = ctx.copy_ok([{"src": "%s/project-a/multi:v1" % src.host,
                              "dst": "%s/subset/multi:v1" % dst.host, "opts": {"platforms": want}}],
                            registries=regopts(src, dst))
    check(res["index_rewritten"], "index_rewritten is not set: %s", res)
    check(res["source_digest"] == img["digest"], "source_digest %s, seeded %s", res["source_digest"],
          img["digest"])
    dd, err = verify.skopeo_digest(ctx, dst, "subset/multi", "v1")
    check(dd == res["digest"], "skopeo sees %s at the destination (%s), the result says %s", dd, err,
          res["digest"])
    check(dd != img["digest"], "the filtered index has the source's digest %s", dd)
    _, sdata, _, _ = src.manifest("project-a/multi", "v1")
    status, data, mt, _ = dst.manifest("subset/multi", "v1")
    check(status == 200 and mt == OCI_INDEX, "destination index: HTTP %s %s", status, mt)

    def plat(d):
        p = d["platform"]
        return "/".join([p["os"], p["architecture"]] + ([p["variant"]] if p.get("variant") else []))
    src_children = {plat(c): c for c in json.loads(sdata)["manifests"]}
    children = json.loads(data)["manifests"]
    check(sorted(plat(c) for c in children) == sorted(want),
          "destination index lists %s, want %s", [plat(c) for c in children], want)
    for c in children:
        check(c["digest"] == src_children[plat(c)]["digest"],
              "child %s changed digest: %s vs %s", plat(c), c["digest"], src_children[plat(c)]["digest"])
        check(dst.head_manifest("subset/multi", c["digest"]) == 200, "child %s missing", c["digest"])
        verify.same_image(ctx, src, "project-a/multi", c["digest"], dst, "subset/multi", c["digest"])
    ok, err = verify.skopeo_pull(ctx, dst, "subset/multi", "v1")
    check(ok, "skopeo copy --all of the filtered index failed: %s", err)


@scenario(weight=5)
def oci_layout_roundtrip(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    layout = os.path.join(ctx.tmp("layout"), "oci")
    cases = [("project-a/multi", "v1", "multi"), ("project-a/app", "v1.0", "app"),
             ("project-a/web", "v1.0", "web")]
    ctx.copy_ok([{"src": "%s/%s:%s" % (src.host, r, t), "dst": "oci:%s:%s" % (layout, lt)}
                 for r, t, lt in cases], registries=regopts(src, dst), concurrency=1)
    bad = verify.oci_layout_blobs_ok(layout)
    check(not bad, "blobs of the OCI layout do not match their names: %s", bad)
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    refs = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m for m in index["manifests"]}
    for repo, tag, lt in cases:
        want = seeded(images, repo, tag)
        desc = refs.get(lt)
        check(desc is not None, "index.json of the layout has no ref.name %s: %s", lt, index)
        check(desc["digest"] == want["digest"] and desc["mediaType"] == want["media_type"],
              "oci:%s:%s is %s (%s), the source %s (%s)", layout, lt, desc["digest"], desc["mediaType"],
              want["digest"], want["media_type"])
        problems = verify.oci_layout_problems(layout, desc["digest"])
        check(not problems, "oci:%s:%s is incomplete: %s", layout, lt, problems)
        if want["media_type"] in (OCI_MANIFEST, OCI_INDEX):
            # skopeo 1.9 reads OCI media types from a layout, not Docker ones
            d = verify.oci_digest(ctx, layout, lt)
            check(d == want["digest"], "skopeo reads %s from oci:%s:%s, want %s", d, layout, lt,
                  want["digest"])
    # and back out into a registry
    ctx.copy_ok([{"src": "oci:%s:%s" % (layout, lt), "dst": "%s/fromoci/%s:%s" % (dst.host, lt, tag)}
                 for _, tag, lt in cases], registries=regopts(dst))
    for repo, tag, lt in cases:
        verify.same_image(ctx, src, repo, tag, dst, "fromoci/" + lt, tag)


@scenario(weight=4)
def mount_into_second_repository(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    img = "%s/project-a/app:v1.0" % src.host
    (first, second), counters = ctx.copy_ok(
        [{"src": img, "dst": "%s/first/app:v1.0" % dst.host},
         {"src": img, "dst": "%s/second/app:v1.0" % dst.host}],
        registries=regopts(src, dst), concurrency=1)
    check(first["blobs_copied"] == 3, "first copy: %s", first)
    check(second["blobs_mounted"] == 3 and second["blobs_copied"] == 0 and second["bytes"] == 0,
          "second repository: want 3 blobs mounted, none copied: %s", second)
    check(counters["blobs_mounted"] >= 3, "engine counters: %s", counters)
    _, data, _, _ = dst.manifest("second/app", "v1.0")
    m = json.loads(data)
    for d in [m["config"]] + m["layers"]:
        check(dst.blob_exists("second/app", d["digest"]), "mounted blob %s missing in second/app", d["digest"])
    for repo in ("first/app", "second/app"):
        verify.same_image(ctx, src, "project-a/app", "v1.0", dst, repo, "v1.0")


@scenario(weight=5)
def rerun_copies_nothing(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    cases = [("project-a/app", "v2.0"), ("project-a/web", "latest"), ("project-a/multi", "v1"),
             ("project-b/dmulti", "v1")]
    jobs = [{"src": "%s/%s:%s" % (src.host, r, t), "dst": "%s/%s:%s" % (dst.host, r, t)} for r, t in cases]
    first, _ = ctx.copy_ok(jobs, registries=regopts(src, dst))
    check(all(not r["up_to_date"] for r in first), "first run found images up to date: %s", first)
    before = dst.fingerprint()
    again, counters = ctx.copy_ok(jobs, registries=regopts(src, dst))
    for r in again:
        check(r["up_to_date"] and r["blobs_copied"] == 0 and r["bytes"] == 0 and r["manifests_pushed"] == 0,
              "re-run copied something: %s", r)
    check(counters["bytes_transferred"] == 0 and counters["blobs_copied"] == 0,
          "re-run counters: %s", counters)
    check(dst.fingerprint() == before, "the re-run changed the destination's storage")
    verify.same_images(ctx, [(src, r, t, dst, r, t) for r, t in cases])


@scenario(weight=7)
def corrupted_source_blob(ctx):
    src, dst = ctx.registries("plain", "plain")  # the source is damaged: not the shared one
    images = ctx.seed(src, "small")
    _, data, _, _ = src.manifest("project-a/web", "v2.0")
    layer = json.loads(data)["layers"][-1]["digest"]
    path = src.blob_path(layer)
    with open(path, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    ctx.log("corrupted %s (%s) at offset 100", layer, path)
    bad = "%s/project-a/web:v2.0" % src.host
    good = "%s/project-a/app:v1.0" % src.host
    r, results, _ = ctx.copy([{"src": bad, "dst": "%s/corrupt/web:v2.0" % dst.host},
                              {"src": good, "dst": "%s/fine/app:v1.0" % dst.host}],
                             registries=regopts(src, dst))
    check(r.status == 1, "exit status %s, want 1: %r", r.status, r)
    res = results.get("%s -> %s/corrupt/web:v2.0" % (bad, dst.host))
    check(res is not None and not res["ok"], "the corrupted image was not reported as failed: %r", r)
    check(res["code"] == "DIGEST_MISMATCH", "code %s, want DIGEST_MISMATCH: %s", res["code"], res["error"])
    check(layer in res["error"], "the message does not name the blob %s: %s", layer, res["error"])
    check(dst.head_manifest("corrupt/web", "v2.0") == 404, "the destination tag corrupt/web:v2.0 exists")
    d, _ = verify.skopeo_digest(ctx, dst, "corrupt/web", "v2.0")
    check(d is None, "skopeo finds corrupt/web:v2.0 at the destination (%s)", d)
    check(not dst.blob_exists("corrupt/web", layer), "the corrupt blob is served by the destination")
    check(not os.path.exists(dst.blob_path(layer)), "the corrupt blob is in the destination's storage")
    # the healthy image of the same run is complete
    verify.same_image(ctx, src, "project-a/app", "v1.0", dst, "fine/app", "v1.0")
    verify.registry_consistent(ctx, dst)


if __name__ == "__main__":
    e2e.standalone(__file__)
