#!/usr/bin/env python3
"""The command line: replicate (one image, tag filters, repository patterns
with --parallel-workers, --dry-run, --metrics-file), replicate-tree, sync
and validate-config, error exits, and resume after SIGTERM during a big
layer. Each scenario skips ("skipped: command X not available") while the
command it needs does not exist yet."""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402


def tags_of(images, repo):
    return sorted(i["tag"] for i in images if i["repository"] == repo)


def replicate(ctx, *args, **kw):
    return ctx.fl("replicate", *args, "--no-progress", **kw)


@scenario(weight=4)
def cli_replicate_single_image(ctx):
    ctx.require_command("replicate")
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    r = replicate(ctx, "%s/project-a/app:v1.0" % src.host, "%s/copied/app:v1.0" % dst.host)
    check(r.status == 0, "replicate SRC DST failed: %r", r)
    r = replicate(ctx, "docker://%s/project-a/multi:v1" % src.host, "docker://%s/copied/multi:v1" % dst.host,
                  "--platform", "linux/arm64/v8")
    check(r.status == 0, "replicate --platform failed: %r", r)
    verify.same_image(ctx, src, "project-a/app", "v1.0", dst, "copied/app", "v1.0")
    _, data, _, _ = dst.manifest("copied/multi", "v1")
    plats = [m["platform"]["architecture"] for m in json.loads(data)["manifests"]]
    check(plats == ["arm64"], "--platform linux/arm64/v8 gave an index of %s", plats)
    ok, err = verify.skopeo_pull(ctx, dst, "copied/multi", "v1")
    check(ok, "skopeo copy of the filtered index: %s", err)


@scenario(weight=5)
def cli_tag_filter(ctx):
    ctx.require_command("replicate")
    src, images = ctx.shared("small")
    dst = ctx.registry()
    r = replicate(ctx, "--source", src.host, "--destination", dst.host, "--repository", "project-a/app",
                  "--tag-filter", "v*")
    check(r.status == 0, "replicate --tag-filter failed: %r", r)
    want = [t for t in tags_of(images, "project-a/app") if t.startswith("v")]
    check(want == ["v1.0", "v1.1", "v2.0"], "seed changed: %s", want)
    got = dst.tags("project-a/app")
    check(got == want, "--tag-filter 'v*' copied %s, want %s", got, want)
    r = replicate(ctx, "--source", src.host, "--destination", dst.host, "--repository", "project-a/web",
                  "--exclude-tag", "v1.*", "--dest-prefix", "excl")
    check(r.status == 0, "replicate --exclude-tag failed: %r", r)
    got2 = dst.tags("excl/project-a/web")
    check(got2 == ["latest", "v2.0"], "--exclude-tag 'v1.*' copied %s", got2)
    verify.same_images(ctx, [(src, "project-a/app", t, dst, "project-a/app", t) for t in want] +
                       [(src, "project-a/web", t, dst, "excl/project-a/web", t) for t in got2])


@scenario(weight=8)
def cli_parallel_workers_pattern(ctx):
    ctx.require_command("replicate")
    src, images = ctx.shared("fleet")
    dst = ctx.registry()
    r = replicate(ctx, "--source", src.host, "--destination", dst.host, "--repository-pattern",
                  "fleet/repo-*", "--parallel-workers", "4")
    check(r.status == 0, "replicate --repository-pattern --parallel-workers failed: %r", r)
    want = sorted((i["repository"], i["tag"]) for i in images if i["repository"].startswith("fleet/repo-"))
    got = dst.all_tags()
    check(got == want, "copied %d tags, want %d: extra %s, missing %s", len(got), len(want),
          sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5])
    verify.same_images(ctx, [(src, rp, t, dst, rp, t) for rp, t in want], pull=False)
    verify.registry_consistent(ctx, dst)


@scenario(weight=4)
def cli_dry_run_changes_nothing(ctx):
    ctx.require_command("replicate")
    src, images = ctx.shared("small")
    dst = ctx.registry()
    args = ["--source", src.host, "--destination", dst.host, "--repository-pattern", "project-a/*"]
    before = dst.fingerprint()
    r = replicate(ctx, *args, "--dry-run")
    check(r.status == 0, "--dry-run failed: %r", r)
    n = len([i for i in images if i["repository"].startswith("project-a/")])
    r = replicate(ctx, *args, "--dry-run", "--format", "json")
    check(r.status == 0, "--dry-run --format json failed: %r", r)
    plan = json.loads(r.out)
    check(plan["totals"]["copy"] == n, "dry run plans %s copies, want %d", plan["totals"], n)
    check(dst.fingerprint() == before and dst.catalog() == [], "--dry-run wrote to the destination")
    # after copying one repository, the dry run sees it up to date
    r = replicate(ctx, "--source", src.host, "--destination", dst.host, "--repository", "project-a/web")
    check(r.status == 0, "replicate failed: %r", r)
    after = dst.fingerprint()
    r = replicate(ctx, *args, "--dry-run", "--format", "json")
    plan = json.loads(r.out)
    nweb = len(tags_of(images, "project-a/web"))
    check(plan["totals"]["up_to_date"] == nweb and plan["totals"]["copy"] == n - nweb,
          "dry run after copying project-a/web: %s (want %d up to date)", plan["totals"], nweb)
    check(dst.fingerprint() == after, "the second --dry-run wrote to the destination")


@scenario(weight=5)
def cli_metrics_file(ctx):
    ctx.require_command("replicate")
    src, images = ctx.shared("small")
    dst = ctx.registry()
    m1, m2 = os.path.join(ctx.tmp("m"), "first.json"), os.path.join(ctx.tmp("m"), "second.json")
    args = ["--source", src.host, "--destination", dst.host, "--repository", "project-a/app",
            "--repository", "project-b/tool"]
    r = replicate(ctx, *args, "--metrics-file", m1)
    check(r.status == 0, "replicate --metrics-file failed: %r", r)
    n = len(tags_of(images, "project-a/app")) + len(tags_of(images, "project-b/tool"))
    with open(m1) as f:
        m = json.load(f)
    ctx.log("metrics: %s", json.dumps(m))
    check(m["images_replicated"] == n and m["images_failed"] == 0 and m["images_up_to_date"] == 0,
          "metrics images: %s (want %d replicated)", m, n)
    check(m["bytes_transferred"] > 0 and m["blobs_copied"] > 0, "metrics bytes/blobs: %s", m)
    check(set(m.get("destinations", {})) == {dst.host + "/project-a/app", dst.host + "/project-b/tool"},
          "metrics destinations: %s", list(m.get("destinations", {})))
    check(m.get("run_id") and m.get("started_at") and m.get("finished_at") and m.get("failed_images") == []
          and m.get("images_skipped_by_filter") == 0, "metrics lack run_id/times/failed_images: %s", m)
    check("retries" in m and "duration_seconds" in m, "metrics lack retries/duration_seconds: %s", m)
    r = replicate(ctx, *args, "--metrics-file", m2)
    with open(m2) as f:
        m = json.load(f)
    check(r.status == 0 and m["images_up_to_date"] == n and m["images_replicated"] == 0
          and m["bytes_transferred"] == 0, "metrics of the re-run: %s", m)
    verify.same_images(ctx, [(src, "project-a/app", t, dst, "project-a/app", t)
                             for t in tags_of(images, "project-a/app")])


@scenario(weight=5)
def cli_replicate_tree(ctx):
    ctx.require_command("replicate-tree")
    src, images = ctx.shared("small")
    dst = ctx.registry()
    r = ctx.fl("replicate-tree", "%s/project-a" % src.host, "%s/backup/project-a" % dst.host,
               "--no-progress")
    check(r.status == 0, "replicate-tree failed: %r", r)
    want = sorted(("backup/" + i["repository"], i["tag"]) for i in images
                  if i["repository"].startswith("project-a/"))
    got = dst.all_tags()
    check(got == want, "replicate-tree copied %s, want %s", got, want)
    verify.same_images(ctx, [(src, rp[len("backup/"):], t, dst, rp, t) for rp, t in want])


@scenario(weight=4)
def cli_error_exits(ctx):
    ctx.require_command("replicate")
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    r = replicate(ctx, "127.0.0.1:1/team/app:v1", "%s/team/app:v1" % dst.host, timeout=60)
    check(r.status == 1 and "127.0.0.1:1" in r.out + r.err, "unreachable source: %r", r)
    check(r.seconds < 20 * e2e.time_scale(), "unreachable source took %.1fs", r.seconds)
    r = replicate(ctx, "--source", src.host, "--destination", dst.host, "--repository", "no/such-repo")
    check(r.status == 1 and "no/such-repo" in r.out + r.err, "missing repository: %r", r)
    r = replicate(ctx)
    check(r.status == 2, "replicate without arguments: exit %s, want 2", r.status)
    r = replicate(ctx, "--source", src.host, "--destination", dst.host, "--repository", "x",
                  "--parallel-workers", "zero")
    check(r.status == 2, "--parallel-workers zero: exit %s, want 2", r.status)
    check(dst.catalog() == [], "the destination has repositories: %s", dst.catalog())


SYNC_YAML = """version: 1
registries:
  src:
    host: "{src}"
    insecure: true
  dst:
    host: "{dst}"
    credentials:
      username: {user}
      password_env: E2E_SYNC_PASSWORD
sync:
  - source: {{ registry: src, repository: project-b/tool }}
    destination: {{ registry: dst, prefix: synced }}
    tags: {{ semver: ">=1.1.0" }}
  - source: {{ registry: src, repository_pattern: "project-a/m*" }}
    destination: {{ registry: dst, template: "mirror/{{name}}" }}
    platforms: [linux/arm64/v8]
"""

BAD_YAML = """version: 1
registries:
  src:
    host: "{src}"
    credentials: {{ username: u, password: hunter2 }}
sync:
  - source: {{ registry: srcx, repository: "Bad//Name" }}
    destination: {{ registry: src }}
    tags: {{ semver: "not a range" }}
"""


@scenario(weight=6)
def cli_sync_and_validate_config(ctx):
    ctx.require_command("sync", "validate-config")
    src, images = ctx.shared("small")
    dst = ctx.registry("htpasswd")
    d = ctx.tmp("config")
    good, bad = os.path.join(d, "sync.yaml"), os.path.join(d, "bad.yaml")
    with open(good, "w") as f:
        f.write(SYNC_YAML.format(src=src.host, dst=dst.host, user=dst.username))
    with open(bad, "w") as f:
        f.write(BAD_YAML.format(src=src.host))
    r = ctx.fl("validate-config", good)
    check(r.status == 0 and re.search(r": valid \(2 registries, 2 sync entries\)", r.out) and "invalid" not in r.out,
          "validate-config of a good file: %r", r)
    r = ctx.fl("validate-config", bad)
    check(r.status == 2, "validate-config of a bad file: exit %s, want 2: %r", r.status, r)
    lines = [l for l in (r.out + r.err).splitlines() if l.startswith(bad + ":")]
    check(len(lines) >= 4, "want one FILE:LINE:COLUMN line per problem, got: %r", r)
    check(any(":5:" in l and "password" in l for l in lines), "the plain-text password is not reported at line 5")
    check("hunter2" not in r.out + r.err, "validate-config echoes the password")
    r = ctx.fl("sync", "--config", bad)
    check(r.status == 2, "sync with a bad file: exit %s, want 2", r.status)
    check(dst.catalog() == [], "a refused sync wrote to the destination")
    env = {"E2E_SYNC_PASSWORD": dst.password}
    metrics = os.path.join(d, "metrics.json")
    r = ctx.fl("sync", "--config", good, "--metrics-file", metrics, env=env)
    check(r.status == 0, "sync failed: %r", r)
    check(dst.password not in r.out + r.err, "sync prints the password")
    got = dst.all_tags()
    want = [("mirror/multi", "v1"), ("synced/project-b/tool", "v1.1"), ("synced/project-b/tool", "v2.0")]
    check(got == want, "sync copied %s, want %s", got, want)
    for t in ("v1.1", "v2.0"):
        verify.same_image(ctx, src, "project-b/tool", t, dst, "synced/project-b/tool", t)
    _, data, _, _ = dst.manifest("mirror/multi", "v1")
    plats = [m["platform"]["architecture"] for m in json.loads(data)["manifests"]]
    check(plats == ["arm64"], "platforms: %s", plats)
    ok, err = verify.skopeo_pull(ctx, dst, "mirror/multi", "v1")
    check(ok, "skopeo copy of mirror/multi:v1: %s", err)
    with open(metrics) as f:
        m = json.load(f)
    check(m["images_replicated"] == 3, "sync metrics: %s", m)
    r = ctx.fl("sync", "--config", good, "--dry-run", env=env)
    check(r.status == 0 and dst.all_tags() == want, "sync --dry-run after the sync: %r", r)


def wait_for(cond, timeout, what, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise e2e.Failure("timed out after %ss waiting for %s" % (timeout, what))


@scenario(weight=20, timeout=300)
def cli_resume_after_sigterm(ctx):
    ctx.require_command("replicate", "resume")
    ctx.require_option("replicate", "--checkpoint-file")
    src, images = ctx.shared("big")
    dst = ctx.registry()
    big = images[0]
    # a proxy holds the big layer's download for a while after 16 MiB, so
    # SIGTERM arrives while the layer is in flight, whatever the machine
    _, data, _, _ = src.manifest("big/layer", "v1")
    layer = max(json.loads(data)["layers"], key=lambda l: l["size"])
    proxy = ctx.faultproxy(src, [{"name": "hold", "method": "GET", "path": "/blobs/" + layer["digest"],
                                  "nth": 1, "action": "stall", "after_bytes": 16 << 20, "seconds": 8}])
    d = ctx.tmp("resume")
    cp = os.path.join(d, "checkpoint.json")
    metrics = os.path.join(d, "metrics.json")
    out = open(os.path.join(d, "replicate.log"), "w")
    p = ctx.spawn([e2e.BIN, "replicate", "--source", proxy.host, "--destination", dst.host,
                   "--repository", "big/layer", "--checkpoint-file", cp, "--no-progress",
                   "--metrics-file", metrics],
                  stdout=out, stderr=out)
    wait_for(lambda: proxy.faults() or p.poll() is not None, 60, "the big layer download")
    check(p.poll() is None, "replicate ended (exit %s) before the big layer was in flight: %s",
          p.returncode, open(os.path.join(d, "replicate.log")).read()[-2000:])
    time.sleep(0.3)
    t = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        status = p.wait(30)
    except Exception:  # noqa: BLE001
        raise e2e.Failure("replicate did not exit within 30 s of SIGTERM")
    ctx.log("replicate exited %s %.2fs after SIGTERM: %s", status, time.time() - t,
            open(os.path.join(d, "replicate.log")).read()[-2000:])
    check(status == 143, "exit status after SIGTERM: %s, want 143", status)
    check(time.time() - t < 5 * e2e.time_scale(), "replicate took %.1fs to stop after SIGTERM", time.time() - t)
    check(os.path.exists(cp), "no checkpoint file after SIGTERM")
    with open(cp) as f:
        state = json.load(f)
    states = [v.get("state") for v in state.get("images", {}).values()]
    check(states and "done" not in states, "checkpoint states after SIGTERM: %s", states)
    check(dst.head_manifest("big/layer", "v1") == 404, "the tag exists after an interrupted copy")
    log = open(os.path.join(d, "replicate.log")).read()
    check("freightliner resume --checkpoint-file %s" % cp in log, "the interrupted run does not say how to "
          "resume: %s", log[-500:])
    with open(metrics) as f:
        m1 = json.load(f)
    check(m1["interrupted"] and m1["run_id"] == state["run_id"], "metrics of the interrupted part: %s", m1)
    r = ctx.fl("resume", cp, timeout=240)
    check(r.status == 0, "resume failed: %r", r)
    with open(metrics) as f:
        m2 = json.load(f)
    check(m2["run_id"] == m1["run_id"] and m2["resumes"] == 1 and m2["images_replicated"] == 1
          and not m2["interrupted"] and m2["started_at"] == m1["started_at"]
          and m2["bytes_transferred"] >= m1["bytes_transferred"],
          "metrics after resume do not add up both parts: %s then %s", m1, m2)
    verify.same_image(ctx, src, "big/layer", "v1", dst, "big/layer", "v1")
    check(big["digest"] == verify.skopeo_digest(ctx, dst, "big/layer", "v1")[0], "digest differs from the seed")
    check(not dst.bad_blobs(), "corrupt blobs at the destination")
    # a second resume has nothing to do and leaves the totals as they are
    r = ctx.fl("resume", cp)
    with open(metrics) as f:
        m3 = json.load(f)
    check(r.status == 0 and m3["images_replicated"] == 1 and m3["resumes"] == 2, "no-op resume: %r %s", r, m3)


@scenario(weight=12, timeout=200)
def cli_interrupt_without_checkpoint(ctx):
    ctx.require_command("replicate")
    src, images = ctx.shared("big")
    dst = ctx.registry()
    _, data, _, _ = src.manifest("big/layer", "v1")
    layer = max(json.loads(data)["layers"], key=lambda l: l["size"])
    proxy = ctx.faultproxy(src, [{"name": "hold", "method": "GET", "path": "/blobs/" + layer["digest"],
                                  "nth": 1, "action": "stall", "after_bytes": 16 << 20, "seconds": 8}])
    d = ctx.tmp("sigint")
    log = os.path.join(d, "replicate.log")
    out = open(log, "w")
    p = ctx.spawn([e2e.BIN, "replicate", "%s/big/layer:v1" % proxy.host, "%s/big/layer:v1" % dst.host,
                   "--no-progress"], stdout=out, stderr=out)
    wait_for(lambda: proxy.faults() or p.poll() is not None, 60, "the big layer download")
    check(p.poll() is None, "replicate ended (exit %s) early: %s", p.returncode, open(log).read()[-2000:])
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    try:
        status = p.wait(30)
    except Exception:  # noqa: BLE001
        raise e2e.Failure("replicate did not exit within 30 s of SIGINT")
    text = open(log).read()
    ctx.log("replicate exited %s: %s", status, text[-2000:])
    check(status == 130, "exit status after SIGINT: %s, want 130", status)
    check("resumable" not in text and "no --checkpoint-file" in text and "run the same command again" in text,
          "the interrupted single-image run says: %s", text[-600:])


if __name__ == "__main__":
    e2e.standalone(__file__)
