#!/usr/bin/env python3
"""How an upload finds a blob the destination has: the POST that opens the
upload session asks for a mount from the repository itself
(`?mount=DIGEST&from=REPO`), which a registry answers 201 when the blob is
there (nothing is sent, the source is not read) and 202 with a session when
it is not. A registry that rejects that query (400 here, from the fault
proxy) must still get every image, with a HEAD before each upload from then
on, and nothing uploaded twice."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

MOUNT_QUERY = r"/blobs/uploads/\?mount="
IMAGES = [("project-a/app", "v1.0"), ("project-a/app", "v1.1")]


def copy_twice(ctx, rules):
    """Copy two images that share a layer into dst/mirror/app, then the first
    one again under another tag in a new process (whose engine knows nothing
    of what the first placed). Returns (src, dst, dst proxy, src proxy)."""
    src, dst = ctx.registries("plain", "plain")
    ctx.seed(src, "small")
    sp = ctx.faultproxy(src, [])
    dp = ctx.faultproxy(dst, rules)
    regs = {sp.host: {"insecure": True}, dp.host: {"insecure": True}}
    jobs = [{"src": "%s/%s:%s" % (sp.host, repo, tag), "dst": "%s/mirror/app:%s" % (dp.host, tag)}
            for repo, tag in IMAGES]
    for batch in (jobs, [{"src": jobs[0]["src"], "dst": "%s/mirror/app:again" % dp.host}]):
        r, results, _ = ctx.copy(batch, registries=regs)
        check(r.status == 0 and all(x.get("ok") for x in results.values()),
              "a copy failed: %s\n%s", results, r.err[-2000:])
    for repo, tag in IMAGES:
        verify.same_image(ctx, src, repo, tag, dst, "mirror/app", tag)
    verify.same_image(ctx, src, IMAGES[0][0], IMAGES[0][1], dst, "mirror/app", "again")
    return src, dst, dp, sp


def blob_puts(proxy):
    """Digests of the blobs uploaded (PUT ?digest=) with a 201."""
    return [q["path"].split("digest=")[-1].split("&")[0] for q in proxy.requests()
            if q["method"] == "PUT" and "digest=" in q["path"] and q.get("status") == 201]


@scenario(weight=3, timeout=180)
def upload_finds_present_blob_with_mount_query(ctx):
    """No blob HEADs at all; the re-copy in a new process sends no bytes."""
    _, _, dp, sp = copy_twice(ctx, [])
    reqs = dp.requests()
    heads = [q for q in reqs if q["method"] == "HEAD" and "/blobs/" in q["path"]]
    check(not heads, "blob HEADs at the destination: %s", heads)
    puts = blob_puts(dp)
    check(len(puts) == len(set(puts)), "a blob was uploaded twice: %s", puts)
    present = [q for q in reqs if q["method"] == "POST" and "mount=" in q["path"] and q.get("status") == 201]
    check(len(present) >= 3, "the re-copy did not find its blobs with the mount query: %s", present)
    blob_gets = [q for q in sp.requests() if q["method"] == "GET" and "/blobs/sha256:" in q["path"]]
    check(len(blob_gets) == len(puts), "the source was read for blobs the destination had: %d GETs, %d PUTs",
          len(blob_gets), len(puts))
    ctx.note("%d blobs uploaded, %d found by the mount query, 0 blob HEADs", len(puts), len(present))


@scenario(weight=3, timeout=180)
def upload_mount_query_rejected(ctx):
    """Every mount query answered 400: plain POSTs with a HEAD first, all
    images copied, no blob uploaded twice."""
    rule = {"name": "no-mount-query", "method": "POST", "path": MOUNT_QUERY, "action": "status",
            "status": 400}
    _, _, dp, _ = copy_twice(ctx, [rule])
    check(dp.faults(), "the mount query was never rejected")
    puts = blob_puts(dp)
    check(len(puts) == len(set(puts)), "a blob was uploaded twice: %s", puts)
    heads = [q for q in dp.requests() if q["method"] == "HEAD" and "/blobs/" in q["path"]]
    check(heads, "no HEAD before uploads after the mount query was rejected")
    ctx.note("%d mount queries rejected; %d blobs uploaded once each; %d blob HEADs",
             len(dp.faults()), len(puts), len(heads))


if __name__ == "__main__":
    e2e.standalone(__file__)
