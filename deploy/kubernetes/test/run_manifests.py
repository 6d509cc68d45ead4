#!/usr/bin/env python3
"""Run the containers of deploy/kubernetes as a kubelet would, on loopback.

Reads the manifests (parsed by validate.mjs --dump), and for the CronJob
and every index of the Indexed Job runs the container's exact args with the
real binary, its environment built from the Secret (secretKeyRef) plus
JOB_COMPLETION_INDEX for the Indexed Job, and its volumes as directories:
the ConfigMap's files, the Secret's items (password_file), emptyDirs. The
only change is the registry hosts in the sync file, pointed at two real
loopback registries with Basic auth whose users are the sync file's and
whose passwords are the Secret's values. Checks: every run exits 0; the
mirror has every selected image (team/* tags v*, not *-rc*) under the
prefix, digest for digest; the shards together copied each image exactly
once (their checkpoints); a wrong Secret fails with exit 1 (UNAUTHORIZED).
serve (issue #13) is not run: the command does not exist yet.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "e2e", "harness"))
import registry  # noqa: E402
import seed  # noqa: E402

BIN = os.environ.get("FREIGHTLINER_BIN", os.path.join(ROOT, "bin", "freightliner"))
FAILS = []


def check(cond, fmt, *args):
    if not cond:
        FAILS.append(fmt % args)
        print("FAIL: " + fmt % args, file=sys.stderr)


def objects():
    files = sorted(os.path.join(HERE, "..", f) for f in os.listdir(os.path.join(HERE, ".."))
                   if f.endswith(".yaml"))
    out = subprocess.run(["node", os.path.join(HERE, "validate.mjs"), "--dump"] + files,
                         capture_output=True, text=True, check=True).stdout
    return [o["obj"] for o in json.loads(out)]


def named(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def secret_value(objs, name, key):
    s = named(objs, "Secret", name)
    return (s.get("stringData") or {}).get(key)


def run_pod(objs, pod, work, hosts, extra_env, secrets):
    """Run the pod's one container; paths of its mounts map under work/."""
    c = pod["containers"][0]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {}
    for m in c["volumeMounts"]:
        d = os.path.join(work, m["name"])
        os.makedirs(d, exist_ok=True)
        v = vols[m["name"]]
        if "configMap" in v:
            for fname, text in named(objs, "ConfigMap", v["configMap"]["name"])["data"].items():
                for real, loop in hosts.items():
                    text = text.replace(real, loop)
                mounts[m["mountPath"]] = d
                with open(os.path.join(d, fname), "w") as f:
                    f.write(text)
        elif "secret" in v:
            for it in v["secret"]["items"]:
                with open(os.path.join(d, it["path"]), "w") as f:
                    f.write(secrets[it["key"]])
                os.chmod(os.path.join(d, it["path"]), 0o400)
        mounts[m["mountPath"]] = d
    # The sync file and the args name mount paths: map each to its
    # directory, in one pass (a mapped path is not mapped again).
    pattern = re.compile("|".join(re.escape(mp) + r"(?=/|$)" for mp in sorted(mounts, key=len, reverse=True)))

    def remap(text):
        return pattern.sub(lambda mt: mounts[mt.group(0)], text)
    for d in set(mounts.values()):
        for fname in os.listdir(d):
            if fname.endswith(".yaml"):
                p = os.path.join(d, fname)
                text = open(p).read()
                open(p, "w").write(remap(text))
    args = [remap(a) for a in c["args"]]
    env = {k: v for k, v in os.environ.items() if k not in ("FREIGHTLINER_SHARD", "JOB_COMPLETION_INDEX")}
    for e in c.get("env", []):
        ref = e["valueFrom"]["secretKeyRef"]
        env[e["name"]] = secrets[ref["key"]]
    env.update(extra_env)
    r = subprocess.run([BIN] + args, env=env, capture_output=True, text=True, timeout=300)
    return r, mounts


def main():
    objs = objects()
    cm = named(objs, "ConfigMap", "freightliner-sync")["data"]["sync.yaml"]
    real_up = re.search(r"upstream:\s*\n\s*host: (\S+)", cm).group(1)
    real_mirror = re.search(r"mirror:\s*\n\s*host: (\S+)", cm).group(1)
    up_user = re.search(r"upstream:[\s\S]*?username: ([\w-]+)", cm).group(1)
    mirror_user = re.search(r"mirror:[\s\S]*?username: ([\w-]+)", cm).group(1)
    secrets = {"upstream-password": "up-" + os.urandom(6).hex(), "mirror-password": "mi-" + os.urandom(6).hex()}
    for k in secrets:
        check(secret_value(objs, "freightliner-credentials", k) is not None, "Secret lacks %s", k)

    work = tempfile.mkdtemp(prefix="freightliner-k8s-")
    started = []
    try:
        up = registry.start("htpasswd", os.path.join(work, "up"), user=up_user, password=secrets["upstream-password"])
        started.append(os.path.join(work, "up"))
        mi = registry.start("htpasswd", os.path.join(work, "mirror"), user=mirror_user,
                            password=secrets["mirror-password"])
        started.append(os.path.join(work, "mirror"))
        spec = os.path.join(work, "seed.json")
        images = [{"repo": "team/%s" % n, "tags": ["v1.0", "v1.1", "v2.0-rc1", "latest"], "format": "oci",
                   "layers": [{"shared": "base", "size": 4096}, 2048]} for n in ("api", "web", "worker", "db")]
        images.append({"repo": "other/tool", "tags": ["v1"], "layers": [1024]})
        json.dump({"images": images}, open(spec, "w"))
        seed.seed(up["url"], spec, user=up_user, password=secrets["upstream-password"])
        want = sorted("team/%s:%s" % (n, t) for n in ("api", "web", "worker", "db") for t in ("v1.0", "v1.1"))
        hosts = {real_up: up["host"], real_mirror: mi["host"]}

        # The CronJob's pod.
        cron = named(objs, "CronJob", "freightliner-sync")
        r, mounts = run_pod(objs, cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                            os.path.join(work, "cron"), hosts, {}, secrets)
        check(r.returncode == 0, "CronJob pod exited %d: %s", r.returncode, r.stderr[-2000:])
        m = json.load(open(os.path.join(mounts["/work"], "metrics.json")))
        check(m["images_replicated"] == len(want), "CronJob copied %d images, want %d",
              m["images_replicated"], len(want))
        print("CronJob pod: exit %d, %d images replicated" % (r.returncode, m["images_replicated"]))
        for ref in want:
            repo, tag = ref.split(":")
            d = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds",
                                "%s:%s" % (mirror_user, secrets["mirror-password"]), "--format",
                                "{{.Digest}}", "docker://%s/upstream/%s:%s" % (mi["host"], repo, tag)],
                               capture_output=True, text=True)
            s = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds",
                                "%s:%s" % (up_user, secrets["upstream-password"]), "--format",
                                "{{.Digest}}", "docker://%s/%s:%s" % (up["host"], repo, tag)],
                               capture_output=True, text=True)
            check(d.returncode == 0 and d.stdout == s.stdout, "mirror upstream/%s: %r, source %r",
                  ref, d.stdout.strip() or d.stderr.strip(), s.stdout.strip())

        # The Indexed Job's pods, one per index, into a fresh prefix.
        job = named(objs, "Job", "freightliner-sharded")
        count = job["spec"]["completions"]
        hosts2 = dict(hosts)
        seen = {}
        for index in range(count):
            pod = json.loads(json.dumps(job["spec"]["template"]["spec"]))
            objs2 = json.loads(json.dumps(objs))
            cm2 = named(objs2, "ConfigMap", "freightliner-sync")
            cm2["data"]["sync.yaml"] = cm2["data"]["sync.yaml"].replace("prefix: upstream", "prefix: sharded")
            r, mounts = run_pod(objs2, pod, os.path.join(work, "job-%d" % index), hosts2,
                                {"JOB_COMPLETION_INDEX": str(index)}, secrets)
            check(r.returncode == 0, "Job index %d exited %d: %s", index, r.returncode, r.stderr[-2000:])
            ck = json.load(open(os.path.join(mounts["/work"], "sync.ckpt")))
            keys = [k.split(" -> ")[0].split("/", 1)[1] for k in ck["images"]]
            for k in keys:
                check(k not in seen, "%s copied by index %s and %d", k, seen.get(k), index)
                seen[k] = index
            print("Job index %d: exit %d, %d images" % (index, r.returncode, len(keys)))
        check(sorted(seen) == want, "the shards copied %s, want %s", sorted(seen), want)

        # A wrong Secret: the run fails, naming the registry and the reason.
        bad = dict(secrets, **{"mirror-password": "wrong"})
        r, _ = run_pod(objs, cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                       os.path.join(work, "bad"), hosts, {}, bad)
        check(r.returncode == 1 and "UNAUTHORIZED" in (r.stdout + r.stderr).upper(),
              "wrong mirror password: exit %d, %s", r.returncode, (r.stdout + r.stderr)[-600:])
    finally:
        for d in started:
            registry.stop(d)
        shutil.rmtree(work, ignore_errors=True)
    if FAILS:
        print("run_manifests: %d failure(s)" % len(FAILS), file=sys.stderr)
        return 1
    print("run_manifests: ok (CronJob and %d Job indexes ran their args with the Secret and ConfigMap)" % count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
