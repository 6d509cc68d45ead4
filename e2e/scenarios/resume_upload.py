#!/usr/bin/env python3
"""Resumable blob uploads: a large layer (80 MiB, uploaded in 32 MiB PATCH
chunks) whose 2nd chunk is cut mid-body on the way to the destination.

Behind a request-buffering proxy (faultproxy cut_request, as nginx in front
of Harbor) the registry never sees the cut request, its upload session
stays at the acknowledged chunk, and the copy must resume there (upload
status GET, then PATCH from byte 32 MiB) instead of starting over. When the
cut bytes do reach the registry (a forwarding proxy), Distribution
invalidates the session (its upload status answers 404) and the copy must
fall back to trying the whole blob again, and still succeed. A registry that
turns chunked uploads down (405 to the first PATCH) gets the blob in one
PUT instead."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

MIB = 1 << 20
LAYER_PAYLOAD = 80 * MIB  # the big layer's tar payload: a little more as tar.gz
CHUNK = 32 * MIB  # the default resume_chunk_size
CUT_AFTER = 8 * MIB  # bytes of the 2nd PATCH body read before the cut
UPLOAD = r"^/v2/.+/blobs/uploads/"


def copy_through_cut(ctx, forward=False, rule=None):
    """Seed a source with one big layer, copy it to a destination behind a
    proxy that cuts the 2nd PATCH (or applies `rule`); returns (source proxy,
    destination proxy, layer, Result, counters)."""
    src, dst = ctx.registries("plain", "plain")
    ctx.seed(src, "big", "--big-size", str(LAYER_PAYLOAD))
    _, data, _, _ = src.manifest("big/layer", "v1")
    layer = max(json.loads(data)["layers"], key=lambda l: l["size"])
    sp = ctx.faultproxy(src, [])  # no faults: its access log shows the downloads
    rule = rule or {"name": "cut-2nd-patch", "method": "PATCH", "path": UPLOAD, "nth": 2,
                    "action": "cut_request", "after_bytes": CUT_AFTER}
    if forward:
        rule["forward"] = True
    dp = ctx.faultproxy(dst, [rule])
    job = {"src": "%s/big/layer:v1" % sp.host, "dst": "%s/big/layer:v1" % dp.host}
    r, results, counters = ctx.copy([job], registries={sp.host: {"insecure": True},
                                                       dp.host: {"insecure": True}}, timeout=120)
    res = results.get(job["src"] + " -> " + job["dst"])
    check(r.status == 0 and res and res.get("ok"), "the copy failed: %r", r)
    faults = dp.faults()
    check(len(faults) == 1 and faults[0]["action"] == rule["action"],
          "the fault was not injected exactly once: %s", faults)
    # the destination has the image, byte for byte (skopeo reads it back)
    verify.same_image(ctx, src, "big/layer", "v1", dst, "big/layer", "v1")
    check(not dst.bad_blobs(), "corrupt blobs at the destination")
    return sp, dp, layer, r, counters


def uploads(proxy):
    """The upload requests the destination proxy saw, in order."""
    return [q for q in proxy.requests() if q["method"] in ("POST", "PATCH", "PUT")
            and "/blobs/uploads/" in q["path"]]


def layer_gets(proxy, layer):
    return [q for q in proxy.requests() if q["method"] == "GET" and q["path"].endswith("/blobs/" + layer["digest"])]


def range_start(q):
    cr = q.get("content_range") or ""
    return int(cr.split("-")[0]) if cr[:1].isdigit() else None


@scenario(weight=8, timeout=300)
def resume_upload_behind_buffering_proxy(ctx):
    """The 2nd chunk is cut and never reaches the registry: the upload goes on
    from the acknowledged chunk boundary, not from byte 0."""
    sp, dp, layer, r, counters = copy_through_cut(ctx, forward=False)
    size = layer["size"]
    check("resuming from %d (registry upload status)" % CHUNK in r.err,
          "the log does not say the upload resumed at byte %d:\n%s", CHUNK, r.err[-3000:])
    reqs = uploads(dp)
    patches = [q for q in reqs if q["method"] == "PATCH"]
    ctx.log("uploads seen by the proxy: %s", json.dumps(reqs))
    cut = [i for i, q in enumerate(patches) if q.get("fault") == "cut_request"]
    check(len(cut) == 1 and range_start(patches[cut[0]]) == CHUNK,
          "the cut PATCH is not the 2nd chunk: %s", patches)
    after = patches[cut[0] + 1:]
    check(after and range_start(after[0]) == CHUNK and after[0].get("status") == 202,
          "the PATCH after the cut does not resume at byte %d: %s", CHUNK, after[:2])
    check(all(range_start(q) != 0 for q in after), "the upload started over after the cut: %s", after)
    posts = [q for q in reqs if q["method"] == "POST"]
    check(len(posts) == 2, "want 2 upload sessions (config, layer), got %d: %s", len(posts), posts)
    sent = sum(q.get("request_bytes") or 0 for q in reqs)
    check(sent < 1.3 * size, "%d bytes uploaded for a %d byte layer (want well under 2x)", sent, size)
    check((counters or {}).get("retries", 0) >= 1, "the resume was not counted as a retry: %s", counters)
    # the source was read again from the hash snapshot at the resume point
    # (a Range GET), not from byte 0
    gets = layer_gets(sp, layer)
    check(len(gets) == 2 and "range" not in gets[0] and gets[1].get("range") == "bytes=%d-" % CHUNK and
          gets[1].get("status") == 206, "the source downloads were not 0- then a Range GET from %d: %s", CHUNK,
          gets)
    ctx.note("layer %d bytes; %d PATCHes, resumed at %d; %d bytes uploaded in all (%.2fx); retries %s",
             size, len(patches), CHUNK, sent, sent / size, (counters or {}).get("retries"))


@scenario(weight=10, timeout=300)
def resume_upload_falls_back_when_registry_saw_the_cut(ctx):
    """The cut bytes reach the registry (a forwarding proxy): Distribution's
    upload session is gone, so the whole blob is tried again, and succeeds."""
    sp, dp, layer, r, counters = copy_through_cut(ctx, forward=True)
    size = layer["size"]
    check("resuming from" not in r.err, "resumed although the session was invalid:\n%s", r.err[-3000:])
    check("cannot resume" in r.err and "trying again" in r.err,
          "the log does not show the fallback to a whole-blob retry:\n%s", r.err[-3000:])
    reqs = uploads(dp)
    ctx.log("uploads seen by the proxy: %s", json.dumps(reqs))
    patches = [q for q in reqs if q["method"] == "PATCH"]
    cut = [i for i, q in enumerate(patches) if q.get("fault") == "cut_request"]
    check(len(cut) == 1, "the cut PATCH is missing: %s", patches)
    restarted = [q for q in patches[cut[0] + 1:] if range_start(q) == 0]
    check(restarted and restarted[0].get("status") == 202,
          "the whole blob was not uploaded again from byte 0: %s", patches)
    posts = [q for q in reqs if q["method"] == "POST"]
    check(len(posts) == 3, "want 3 upload sessions (config, layer, layer again), got %d", len(posts))
    sent = sum(q.get("request_bytes") or 0 for q in reqs)
    # the cut part, then the whole layer again: more than one layer, under two
    check(size < sent < 2 * size, "%d bytes uploaded for a %d byte layer: want the whole layer again "
          "after the cut, and no more", sent, size)
    check((counters or {}).get("retries", 0) >= 1, "the retry was not counted: %s", counters)
    ctx.note("layer %d bytes; whole-blob retry after the cut; %d bytes uploaded in all (%.2fx)",
             size, sent, sent / size)


@scenario(weight=8, timeout=300)
def resume_upload_registry_refusing_chunks(ctx):
    """The destination answers the first PATCH with 405: the blob goes up in
    one streamed PUT in a new session, without a whole-blob retry."""
    sp, dp, layer, r, counters = copy_through_cut(ctx, rule={
        "name": "no-chunks", "method": "PATCH", "path": UPLOAD, "nth": 1, "action": "status", "status": 405})
    size = layer["size"]
    check("refused a chunked upload" in r.err, "the log does not say chunks were refused:\n%s", r.err[-3000:])
    check("trying again" not in r.err, "the whole blob was tried again:\n%s", r.err[-3000:])
    reqs = uploads(dp)
    ctx.log("uploads seen by the proxy: %s", json.dumps(reqs))
    patches = [q for q in reqs if q["method"] == "PATCH"]
    check(len(patches) == 1 and patches[0].get("status") == 405, "want one refused PATCH: %s", patches)
    puts = [q for q in reqs if q["method"] == "PUT" and q.get("request_bytes") == size]
    check(len(puts) == 1 and puts[0].get("status") == 201, "the layer did not go up in one PUT: %s", reqs)
    ctx.note("layer %d bytes: PATCH refused (405), then one PUT", size)


if __name__ == "__main__":
    e2e.standalone(__file__)
