#!/usr/bin/env python3
"""Scale (#12): what a re-run costs at the source, the pull budget, platform
subsets that are no-ops, and the checkpoint journal under kill -9.

  scale_noop_spends_no_pulls         a re-run sends no manifest GET to the
                                     source (counted at a proxy), and the
                                     metrics file says so
  scale_rate_limit_pauses            ratelimit-remaining below
                                     rate_limit.min_remaining pauses the run
                                     (logged), which then finishes
  scale_platform_rerun_pushes_nothing  --platform twice: the second run PUTs
                                     nothing at the destination
  scale_checkpoint_journal_kill9     kill -9 at random moments; after each,
                                     the journal is read by the parser below
                                     (not the module's own code): sound lines,
                                     done images never lost, each one at the
                                     destination with its digest
"""
import hashlib
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

MANIFEST = "/manifests/"


def manifest_requests(proxy, method, since=0):
    return [q for q in proxy.requests()[since:] if q["method"] == method and MANIFEST in q["path"]]


def read_json(path):
    with open(path) as f:
        return json.load(f)


@scenario(weight=4, timeout=240)
def scale_noop_spends_no_pulls(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    sp = ctx.faultproxy(src, [])
    d = ctx.tmp("pulls")
    argv = ["replicate", "--source", sp.host, "--destination", dst.host, "--repository-pattern", "project-*",
            "--no-progress"]
    m1, m2 = os.path.join(d, "m1.json"), os.path.join(d, "m2.json")
    r = ctx.fl(*(argv + ["--metrics-file", m1]))
    check(r.status == 0, "first run failed: %r", r)
    first = len(sp.requests())
    gets1 = manifest_requests(sp, "GET")
    check(read_json(m1).get("source_manifest_gets") == len(gets1),
          "metrics say %s manifest GETs, the proxy saw %d", read_json(m1).get("source_manifest_gets"), len(gets1))
    r = ctx.fl(*(argv + ["--metrics-file", m2]))
    check(r.status == 0, "re-run failed: %r", r)
    m = read_json(m2)
    gets2 = manifest_requests(sp, "GET", first)
    heads2 = manifest_requests(sp, "HEAD", first)
    check(not gets2, "the no-op re-run sent %d manifest GETs to the source: %s", len(gets2), gets2[:3])
    check(m.get("source_manifest_gets") == 0, "metrics of the re-run: %s", m)
    check(m["images_up_to_date"] == len(heads2) and m["images_replicated"] == 0,
          "re-run: %d HEADs at the source for %s", len(heads2), m)
    ctx.note("first run: %d manifest GETs at the source; re-run: 0 GETs, %d HEADs", len(gets1), len(heads2))


RATE_YAML = """version: 1
defaults:
  rate_limit: {{ min_remaining: 5 }}
registries:
  src: {{ host: "{src}", insecure: true }}
  dst: {{ host: "{dst}", insecure: true }}
sync:
  - source: {{ registry: src, repository: project-b/tool }}
    destination: {{ registry: dst }}
"""


@scenario(weight=4, timeout=240)
def scale_rate_limit_pauses(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    # Docker Hub's headers on the first two manifest answers: 2 pulls left of
    # 100 in a 60 s window; then 90 left. min_remaining 5: a pause of 3 pulls
    # x 60/100 s = 1.8 s, then the run goes on
    low = {"ratelimit-limit": "100;w=60", "ratelimit-remaining": "2;w=60"}
    ok = {"ratelimit-limit": "100;w=60", "ratelimit-remaining": "90;w=60"}
    sp = ctx.faultproxy(src, [
        {"name": "low", "path": MANIFEST, "nth": [1, 2], "action": "headers", "headers": low},
        {"name": "ok", "path": MANIFEST, "action": "headers", "headers": ok}])
    d = ctx.tmp("rate")
    cfg = os.path.join(d, "sync.yaml")
    with open(cfg, "w") as f:
        f.write(RATE_YAML.format(src=sp.host, dst=dst.host))
    t = time.time()
    r = ctx.fl("sync", "--config", cfg, "--no-progress", "--parallel", "1")
    took = time.time() - t
    check(r.status == 0, "sync under a low pull budget failed instead of pausing: %r", r)
    pauses = [line for line in r.err.splitlines() if "pausing" in line]
    check(pauses and "2 pulls left" in pauses[0] and "min_remaining 5" in pauses[0] and "until" in pauses[0],
          "no pause logged: %r", r)
    check(took >= 1.5, "the run took %.1f s: it did not pause", took)
    tags = [t for (rp, t) in dst.all_tags() if rp == "project-b/tool"]
    check(len(tags) == 4, "after the pause the destination has %s", tags)
    ctx.note("paused: %s; run %.1f s", pauses[0], took)


@scenario(weight=3, timeout=180)
def scale_platform_rerun_pushes_nothing(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    dp = ctx.faultproxy(dst, [])
    argv = ["replicate", "--source", src.host, "--destination", dp.host, "--repository", "project-a/multi",
            "--platform", "linux/arm64/v8", "--no-progress"]
    r = ctx.fl(*argv)
    check(r.status == 0, "first run failed: %r", r)
    puts1 = [q for q in dp.requests() if q["method"] in ("PUT", "POST", "PATCH")]
    _, data, _, _ = dst.manifest("project-a/multi", "v1")
    kept = json.loads(data)["manifests"]
    check(len(kept) == 1 and kept[0]["platform"]["architecture"] == "arm64", "index at the destination: %s", kept)
    since = len(dp.requests())
    for _ in range(2):
        r = ctx.fl(*argv)
        check(r.status == 0, "re-run failed: %r", r)
        check("1 up to date" in r.err, "re-run did not find the subset up to date: %r", r)
    writes = [q for q in dp.requests()[since:] if q["method"] in ("PUT", "POST", "PATCH", "DELETE")]
    check(not writes, "the re-runs with --platform wrote to the destination: %s", writes[:5])
    ctx.note("first run: %d writes; two re-runs: 0 writes", len(puts1))


# ---- the checkpoint journal, read independently --------------------------------

class Torn(Exception):
    pass


def parse_journal(path):
    """-> (header dict, {key: record}, torn) from the file as the format
    documents it (lua/stdlib/freightliner/checkpoint.lua): a first line that
    is the snapshot, whose checksum covers its text without the checksum
    member (canonical JSON: sorted keys, "checksum" first); then lines
    "<16 hex of sha256(json)> <json>". Raises on damage before the last line."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    head = lines[0]
    prefix = b'{"checksum":"sha256:'
    check(head.startswith(prefix), "the snapshot does not start with its checksum: %r", head[:80])
    want = head[len(prefix):len(prefix) + 64].decode()
    body = b"{" + head[len(prefix) + 64 + 2:]
    check(hashlib.sha256(body).hexdigest() == want, "the snapshot's checksum does not match")
    doc = json.loads(head)
    state = {k: dict(v) for k, v in doc["images"].items()}
    rest = lines[1:]
    torn = False
    # a final newline leaves an empty last piece
    if rest and rest[-1] == b"":
        rest = rest[:-1]
        complete = len(rest)
    else:
        complete = len(rest) - 1  # the last piece has no newline
    for i, line in enumerate(rest):
        good = False
        if len(line) > 17 and line[16:17] == b" ":
            good = hashlib.sha256(line[17:]).hexdigest()[:16] == line[:16].decode("latin-1")
        if not good:
            if i == len(rest) - 1 and (i >= complete or b"\0" in line):
                torn = True
                break
            raise e2e.Failure("journal line %d is damaged: %r" % (i + 2, line[:120]))
        r = json.loads(line[17:])
        check(r["s"] in ("pending", "in_progress", "done", "failed", "skipped"), "bad state %r", r)
        state[r["k"]] = {"state": r["s"], "digest": r.get("d")}
    return doc, state, torn


@scenario(weight=20, timeout=900)
def scale_checkpoint_journal_kill9(ctx):
    ctx.require_option("replicate", "--checkpoint-file")
    src, images = ctx.shared("fleet")
    dst = ctx.registry()
    sp = ctx.faultproxy(src, [{"name": "slow", "method": "GET", "path": "/blobs/sha256:", "probability": 0.5,
                               "action": "stall", "seconds": 0.2}], seed=11)
    d = ctx.tmp("journal")
    cp = os.path.join(d, "checkpoint.json")
    rng = random.Random(ctx.name)
    done_before = {}
    kills = 4 if ctx.quick else 20
    killed = 0
    for it in range(kills):
        if os.path.exists(cp):
            argv = [e2e.BIN, "resume", "--checkpoint-file", cp, "--no-progress"]
        else:
            argv = [e2e.BIN, "replicate", "--source", sp.host, "--destination", dst.host,
                    "--repository-pattern", "fleet/*", "--parallel-workers", "4", "--checkpoint-file", cp,
                    "--no-progress"]
        log = open(os.path.join(d, "attempt-%d.log" % it), "w")
        p = ctx.spawn(argv, stdout=log, stderr=log)
        delay = rng.uniform(0.2, 1.5)
        time.sleep(delay)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            killed += 1
        log.close()
        if not os.path.exists(cp):
            continue
        _, state, torn = parse_journal(cp)
        done = {k: v["digest"] for k, v in state.items() if v["state"] == "done"}
        lost = sorted(set(done_before) - set(done))
        check(not lost, "after kill %d, images done before are no longer done: %s", it, lost[:5])
        for key, digest in done.items():
            srcref, dstref = key.split(" -> ")
            repo_tag = dstref.split("/", 1)[1]
            repo, tag = repo_tag.rsplit(":", 1)
            check(dst.head_manifest(repo, tag) == 200, "%s is done in the journal but not at the destination", key)
            _, _, _, got = dst.manifest(repo, tag)
            check(got == digest, "%s: journal says %s, destination has %s", key, digest, got)
        ctx.log("kill %d after %.2fs: %d done, torn=%s, %d bytes", it, delay, len(done), torn,
                os.path.getsize(cp))
        done_before = done
        if len(done) == len(images):
            break
    r = ctx.fl("resume", "--checkpoint-file", cp, "--no-progress", timeout=300)
    check(r.status == 0, "the final resume failed: %r", r)
    # compacted at the end: one JSON document, everything done
    with open(cp, "rb") as f:
        text = f.read()
    check(text.count(b"\n") == 1, "the checkpoint is not compacted after the run: %d lines", text.count(b"\n"))
    _, state, torn = parse_journal(cp)
    check(not torn and all(v["state"] == "done" for v in state.values()) and len(state) == len(images),
          "final checkpoint: %s", state)
    verify.same_images(ctx, [(src, i["repository"], i["tag"], dst, i["repository"], i["tag"]) for i in images],
                       pull=False)
    check(killed > 0, "no attempt was still running when killed")
    ctx.note("%d kills; journal sound after each; %d images done, none lost", killed, len(images))


if __name__ == "__main__":
    e2e.standalone(__file__)
