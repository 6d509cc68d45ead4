#!/usr/bin/env python3
"""Sharded replication against real registries (scripts/test-shard.sh).

COUNT=3 processes copy one source registry into one destination at the same
time, each with one of the three ways to name its shard, each through a
different command:

  shard 0  replicate --source S --destination D --repository-pattern '*' --shard 0/3
  shard 1  sync --config FILE                with FREIGHTLINER_SHARD=1/3
  shard 2  replicate-tree S D/m --shard-count 3 with JOB_COMPLETION_INDEX=2

all with --shard-split-tags 3, so the repositories with more than three tags
are split by tag and the others are not. Then, independently of
Freightliner (registry HTTP API, and FNV-1a 64 written again here):

  - union: the destination has every source image, digest for digest;
  - intersection: no image is in two shards' checkpoints;
  - each checkpoint holds exactly the images whose key hashes to its index
    (repository, or repository:tag for a split repository);
  - each metrics file counts only its shard's images and repositories;
  - a bad shard is a usage error (exit 2) naming the problem.
Exit 0 when all hold; prints what failed otherwise.
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "e2e", "harness"))
import registry  # noqa: E402
import seed  # noqa: E402

BIN = os.environ.get("FREIGHTLINER_BIN", os.path.join(ROOT, "bin", "freightliner"))
COUNT = 3
SPLIT = 3
PREFIX = "m"
FAILURES = []


def check(cond, fmt, *args):
    if not cond:
        FAILURES.append(fmt % args)
        print("FAIL: " + fmt % args, file=sys.stderr)


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), r.headers


def images(host, prefix=None):
    """{(repo, tag): digest} of a registry, repos under prefix/ (stripped)."""
    out = {}
    repos = json.loads(get("http://%s/v2/_catalog?n=1000" % host)[0])["repositories"]
    accept = ", ".join([
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json"])
    for repo in repos:
        name = repo
        if prefix:
            if not repo.startswith(prefix + "/"):
                continue
            name = repo[len(prefix) + 1:]
        tags = json.loads(get("http://%s/v2/%s/tags/list" % (host, repo))[0])["tags"] or []
        for tag in tags:
            _, headers = get("http://%s/v2/%s/manifests/%s" % (host, repo, tag), accept)
            out[(name, tag)] = headers["Docker-Content-Digest"]
    return out


def checkpoint_images(path):
    doc = json.load(open(path))
    out = {}
    for key, entry in doc["images"].items():
        src = key.split(" -> ")[0]
        repo_tag = src.split("/", 1)[1]
        repo, tag = repo_tag.rsplit(":", 1)
        out[(repo, tag)] = entry["state"]
    return out


def main():
    work = tempfile.mkdtemp(prefix="freightliner-shard-")
    started = []
    try:
        src = registry.start("plain", os.path.join(work, "src"))
        started.append(os.path.join(work, "src"))
        dst = registry.start("plain", os.path.join(work, "dst"))
        started.append(os.path.join(work, "dst"))
        S, D = src["host"], dst["host"]
        seed.seed(src["url"], "small")
        seed.seed(src["url"], "fleet", repos=8, tags=3, layer_size=8192)
        want = images(S)
        tags_per_repo = {}
        for repo, _ in want:
            tags_per_repo[repo] = tags_per_repo.get(repo, 0) + 1
        split = sorted(r for r, n in tags_per_repo.items() if n > SPLIT)
        check(split and len(split) < len(tags_per_repo),
              "the seed must have split and whole repositories: %s", tags_per_repo)
        print("source: %d images in %d repositories; split by tag: %s"
              % (len(want), len(tags_per_repo), ", ".join(split)))

        sync_file = os.path.join(work, "sync.yaml")
        with open(sync_file, "w") as f:
            f.write("version: 1\nregistries:\n  src: { host: %s }\n  dst: { host: %s }\n"
                    "sync:\n  - source: { registry: src, repository_pattern: \"*\" }\n"
                    "    destination: { registry: dst, prefix: %s }\n" % (S, D, PREFIX))

        def files(i):
            return ["--checkpoint-file", os.path.join(work, "ckpt.%d" % i),
                    "--metrics-file", os.path.join(work, "metrics.%d.json" % i),
                    "--shard-split-tags", str(SPLIT), "--no-progress"]
        env = {k: v for k, v in os.environ.items()
               if k not in ("FREIGHTLINER_SHARD", "JOB_COMPLETION_INDEX")}
        runs = [
            ([BIN, "replicate", "--source", S, "--destination", D, "--repository-pattern", "*",
              "--dest-prefix", PREFIX, "--shard", "0/%d" % COUNT] + files(0), env),
            ([BIN, "sync", "--config", sync_file] + files(1),
             dict(env, FREIGHTLINER_SHARD="1/%d" % COUNT)),
            ([BIN, "replicate-tree", S, "%s/%s" % (D, PREFIX), "--shard-count", str(COUNT)] + files(2),
             dict(env, JOB_COMPLETION_INDEX="2")),
        ]
        procs = [subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for cmd, e in runs]
        for i, p in enumerate(procs):
            out = p.communicate(timeout=300)[0]
            print("shard %d (%s): exit %d\n  %s" % (i, runs[i][0][1], p.returncode,
                                                     out.strip().replace("\n", "\n  ")))
            check(p.returncode == 0, "shard %d exited %d", i, p.returncode)

        # union: everything, digest for digest
        have = images(D, PREFIX)
        check(set(have) == set(want), "destination differs: missing %s, extra %s",
              sorted(set(want) - set(have)), sorted(set(have) - set(want)))
        for k in set(want) & set(have):
            check(have[k] == want[k], "%s:%s has %s, source %s", k[0], k[1], have[k], want[k])

        # intersection: nothing twice; each shard exactly its hash class
        owner = {}
        for i in range(COUNT):
            cp = checkpoint_images(os.path.join(work, "ckpt.%d" % i))
            for (repo, tag), state in cp.items():
                check(state == "done", "shard %d: %s:%s is %s", i, repo, tag, state)
                check((repo, tag) not in owner, "%s:%s in shards %s and %d",
                      repo, tag, owner.get((repo, tag)), i)
                owner[(repo, tag)] = i
            expect = {k for k in want
                      if fnv1a64(k[0] + ":" + k[1] if k[0] in split else k[0]) % COUNT == i}
            check(set(cp) == expect, "shard %d checkpoint: extra %s, missing %s", i,
                  sorted(set(cp) - expect), sorted(expect - set(cp)))
            plan = json.load(open(os.path.join(work, "ckpt.%d" % i)))["plan"]
            check((plan.get("shard") or {}).get("index") == i and plan["shard"].get("count") == COUNT,
                  "shard %d checkpoint records shard %r (resume would not keep to it)", i, plan.get("shard"))
            m = json.load(open(os.path.join(work, "metrics.%d.json" % i)))
            check(m["images_replicated"] == len(expect), "shard %d metrics: %d replicated, %d planned",
                  i, m["images_replicated"], len(expect))
            repos = {r for r, _ in expect}
            # the metrics count per destination repository (host/[prefix/]repo)
            paths = [k.split("/", 1)[1] for k in m["destinations"]]
            got = {r for r in repos for p in paths if p == r or p.endswith("/" + r)}
            check(got == repos and len(paths) == len(repos), "shard %d metrics destinations %s, want %s",
                  i, sorted(m["destinations"]), sorted(repos))
            print("shard %d: %d images, %d repositories" % (i, len(cp), len(repos)))
        check(set(owner) == set(want), "checkpoints do not cover the source: missing %s",
              sorted(set(want) - set(owner)))
        for r in split:
            shards = {owner.get(k) for k in want if k[0] == r}
            check(len(shards) > 1, "split repository %s stayed in one shard", r)

        # resume of one shard's checkpoint: its part only, all done already
        r = subprocess.run([BIN, "resume", "--checkpoint-file", os.path.join(work, "ckpt.1"), "--no-progress"],
                           env=env, capture_output=True, text=True)
        n1 = len(checkpoint_images(os.path.join(work, "ckpt.1")))
        check(r.returncode == 0 and ("%d done, 0 to do" % n1) in r.stderr and "shard 1/3" in r.stderr,
              "resume of shard 1: exit %d, %r", r.returncode, r.stderr)

        # usage errors
        for args, env_extra, text in [
                (["--shard", "3/3"], {}, "INDEX must be 0 to 2"),
                (["--shard-count", "3"], {}, "needs JOB_COMPLETION_INDEX"),
                ([], {"FREIGHTLINER_SHARD": "x"}, "FREIGHTLINER_SHARD")]:
            r = subprocess.run([BIN, "replicate", "--source", S, "--destination", D,
                                "--repository-pattern", "*"] + args, env=dict(env, **env_extra),
                               capture_output=True, text=True)
            check(r.returncode == 2 and text in r.stderr, "%s %s: exit %d, %r",
                  args, env_extra, r.returncode, r.stderr)
    finally:
        for d in started:
            registry.stop(d)
        subprocess.run(["rm", "-rf", work])
    if FAILURES:
        print("test-shard: %d failure(s)" % len(FAILURES), file=sys.stderr)
        return 1
    print("test-shard: ok (%d shards: union = all %d images, no overlap, checkpoints and metrics per shard)"
          % (COUNT, len(want)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
