#!/usr/bin/env python3
"""The scale and latency benchmarks of #12 (`make bench-scale`, quick form
`make bench-scale-quick`); standard library, plus skopeo and curl.

  scale.py [--images 2000,10000] [--runs 3] [--rtt 20,50] [--lat-images 2000]
           [--lat-runs 1] [--plan-tags 100000] [--out build/bench/scale.json] [--keep]
  (or BENCH_SCALE_IMAGES, BENCH_RUNS, BENCH_RTT, BENCH_LAT_IMAGES,
   BENCH_LAT_RUNS, BENCH_PLAN_TAGS)

1. Scale fleet, for each size N: N small images (N/10 repositories x 10
   tags) written straight into a source registry's storage
   (scripts/bench/fleetgen.py). Per run, on fresh destinations:
     fl-ckpt     freightliner replicate --checkpoint-file --metrics-file, cold
     fl-ckpt     the same again: the no-op re-run
     fl          cold, without a checkpoint (the checkpoint's cost)
     skopeo      skopeo sync --all --src yaml, cold, then again (no-op)
     ref         the request-limit reference of the no-op: curl sending only
                 what the job needs (catalog, tag lists, HEAD of every
                 manifest at source and destination), 32 in flight
   Wall time, user+sys CPU and peak RSS of the process (/usr/bin/time), and the
   load average before each measurement.
2. Latency: the same no-op (fl, skopeo, ref) through scripts/bench/
   delayproxy.py in front of both registries, for each RTT, over a fleet of
   --lat-images images (the scale fleet when the sizes match).
3. Plan memory: a dry run over --plan-tags tags (one image per repository,
   fleetgen --shared-tags): peak RSS.
Prints one line per measurement and a table of medians and ratios; writes
the JSON (rows, medians, load) to --out.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "e2e", "harness"))
import delayproxy  # noqa: E402
import fleetgen  # noqa: E402
import registry  # noqa: E402

BIN = os.environ.get("FREIGHTLINER_BIN", os.path.join(ROOT, "build", "bin", "freightliner"))
ACCEPT = ("application/vnd.docker.distribution.manifest.v2+json, "
          "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json")
ROWS = []


def log(fmt, *a):
    print("bench-scale: " + (fmt % a if a else fmt), file=sys.stderr, flush=True)


class Fleet:
    """A source registry holding `n` images, and the work directory."""

    def __init__(self, work, n, shared_tags=False, tags=10):
        self.work, self.n = work, n
        self.dir = os.path.join(work, "src-%d" % n)
        repos = max(1, n // tags)
        t = time.time()
        self.gen = fleetgen.generate(os.path.join(self.dir, "data"), repos, tags, shared_tags=shared_tags)
        log("wrote %d tags (%d images) into the source storage in %.1f s", self.gen["tags"], self.gen["images"],
            time.time() - t)
        self.info = registry.start("plain", self.dir)
        self.host = self.info["host"]
        self.repos = ["scale/r%05d" % r for r in range(repos)]
        self.tags = ["t%05d" % i for i in range(tags)]
        self.yaml = os.path.join(work, "sync-%d.yaml" % n)
        with open(self.yaml, "w") as f:
            f.write("%s:\n  tls-verify: false\n  images:\n" % self.host)
            for r in self.repos:
                f.write("    %s: []\n" % r)
        self.dsts = []

    def dst(self):
        d = tempfile.mkdtemp(prefix="dst-", dir=self.work)
        info = registry.start("plain", d)
        self.dsts.append(d)
        return info["host"]

    def drop(self, host):
        for d in self.dsts:
            with open(os.path.join(d, "info.json")) as f:
                if json.load(f)["host"] == host:
                    registry.stop(d)
                    shutil.rmtree(d, ignore_errors=True)
                    self.dsts.remove(d)
                    return

    def stop(self):
        for d in self.dsts + [self.dir]:
            registry.stop(d)
            shutil.rmtree(d, ignore_errors=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def measure(tool, phase, size, argv, rtt=0, expect=0):
    """Run argv; one row: wall, CPU, peak RSS (of the process and its children)."""
    logpath = os.path.join(WORK, "logs", "%s-%s-%d-%d-%d.log" % (tool, phase, size, rtt, len(ROWS)))
    load = loadavg()
    tf = logpath + ".time"
    with open(logpath, "w") as out:
        # /usr/bin/time forks the tool from a small process: the peak RSS is
        # the tool's own, not this Python's (a fork shares its pages)
        t0 = time.monotonic()
        rc = subprocess.call(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf] + argv, stdout=out,
                             stderr=subprocess.STDOUT)
        wall = time.monotonic() - t0
    with open(tf) as f:
        _, user, system, maxrss = f.read().split()[-4:]
    row = {"tool": tool, "phase": phase, "images": size, "rtt_ms": rtt, "wall_s": round(wall, 3),
           "cpu_s": round(float(user) + float(system), 3), "maxrss_mib": round(int(maxrss) / 1024, 1),
           "load_before": load, "log": logpath}
    ROWS.append(row)
    log("%-8s %-5s %6d img %3d ms: %8.2f s wall %7.2f s CPU %7.1f MiB (load %.1f)", tool, phase, size, rtt,
        row["wall_s"], row["cpu_s"], row["maxrss_mib"], load)
    return row


def fl_replicate(src, dst, *extra):
    return [BIN, "replicate", "--source", src, "--destination", dst, "--repository-pattern", "scale/*",
            "--no-progress"] + list(extra)


def skopeo_sync(fleet, src_host, dst):
    # skopeo reads the registry from the YAML: point it at src_host
    path = fleet.yaml
    if src_host != fleet.host:
        path = fleet.yaml + "." + src_host.replace(":", "_")
        with open(fleet.yaml) as f, open(path, "w") as g:
            g.write(f.read().replace(fleet.host, src_host, 1))
    return ["skopeo", "sync", "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker",
            "--dest-tls-verify=false", path, dst]


def reference(fleet, src, dst, mapping=lambda r: r):
    """curl: the requests a no-op needs, 32 in flight, connections reused."""
    cfg = os.path.join(WORK, "ref-%s.curl" % len(ROWS))
    with open(cfg, "w") as f:
        f.write('url = "http://%s/v2/_catalog?n=%d"\noutput = "/dev/null"\n' % (src, len(fleet.repos) + 1))
        for r in fleet.repos:
            f.write('url = "http://%s/v2/%s/tags/list"\noutput = "/dev/null"\n' % (src, r))
    heads = os.path.join(WORK, "refh-%s.curl" % len(ROWS))
    with open(heads, "w") as f:
        for r in fleet.repos:
            for t in fleet.tags:
                for host, repo in ((src, r), (dst, mapping(r))):
                    f.write('url = "http://%s/v2/%s/manifests/%s"\noutput = "/dev/null"\n' % (host, repo, t))
    script = ("curl -sf --parallel --parallel-max 32 -K %s && "
              "curl -sf -I -H 'Accept: %s' --parallel --parallel-max 32 -K %s" % (cfg, ACCEPT, heads))
    return ["sh", "-c", script]


def check_noop(row_tool, log_text, n):
    if "0 images replicated, %d up to date" % n not in log_text:
        raise SystemExit("bench-scale: %s no-op did not find %d images up to date:\n%s" % (row_tool, n,
                                                                                         log_text[-2000:]))


def last_log():
    with open(ROWS[-1]["log"]) as f:
        return f.read()


def scale_runs(fleet, runs):
    n = fleet.gen["tags"]
    keep = {}
    for run in range(runs):
        d1, d2 = fleet.dst(), fleet.dst()
        ck = os.path.join(WORK, "ck-%d-%d.json" % (n, run))
        # the order alternates run to run (the first cold copy reads a cold cache)
        if run % 2 == 1:
            measure("fl", "cold", n, fl_replicate(fleet.host, d2))
        measure("fl-ckpt", "cold", n, fl_replicate(fleet.host, d1, "--checkpoint-file", ck, "--metrics-file",
                                                    ck + ".metrics"))
        if run % 2 == 0:
            measure("fl", "cold", n, fl_replicate(fleet.host, d2))
        ck2 = ck + ".noop"
        measure("fl-ckpt", "noop", n, fl_replicate(fleet.host, d1, "--checkpoint-file", ck2, "--metrics-file",
                                                    ck2 + ".metrics"))
        check_noop("fl", last_log(), n)
        with open(ck2 + ".metrics") as f:
            gets = json.load(f).get("source_manifest_gets")
        ROWS[-1]["source_manifest_gets"] = gets
        measure("ref", "noop", n, reference(fleet, fleet.host, d1))
        d3 = fleet.dst()
        measure("skopeo", "cold", n, skopeo_sync(fleet, fleet.host, d3))
        measure("skopeo", "noop", n, skopeo_sync(fleet, fleet.host, d3))
        keep = {"fl": d1, "skopeo": d3}
        for d in [d2] + ([d1, d3] if run + 1 < runs else []):
            fleet.drop(d)
    return keep


def latency_runs(fleet, dsts, rtts, runs):
    n = fleet.gen["tags"]
    for rtt in rtts:
        sp = delayproxy.DelayProxy(fleet.host, rtt)
        src = sp.start()
        proxies = [sp]
        via = {}
        for tool, d in dsts.items():
            p = delayproxy.DelayProxy(d, rtt)
            via[tool] = p.start()
            proxies.append(p)
        for _ in range(runs):
            measure("fl", "noop", n, fl_replicate(src, via["fl"]), rtt)
            check_noop("fl", last_log(), n)
            measure("ref", "noop", n, reference(fleet, src, via["fl"]), rtt)
            measure("skopeo", "noop", n, skopeo_sync(fleet, src, via["skopeo"]), rtt)
        for p in proxies:
            p.stop()


def plan_memory(work, tags):
    fleet = Fleet(work, tags, shared_tags=True, tags=1000)
    try:
        d = fleet.dst()
        row = measure("fl", "plan", fleet.gen["tags"], fl_replicate(fleet.host, d, "--dry-run"))
        return row
    finally:
        fleet.stop()


def median(tool, phase, size, rtt=0, key="wall_s"):
    xs = [r[key] for r in ROWS if r["tool"] == tool and r["phase"] == phase and r["images"] == size
          and r["rtt_ms"] == rtt]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def report(sizes, lat_n, rtts):
    out = {"rows": ROWS, "summary": []}
    lines = []
    for n in sizes:
        s = {
            "images": n,
            "cold_ckpt_s": median("fl-ckpt", "cold", n), "cold_s": median("fl", "cold", n),
            "skopeo_cold_s": median("skopeo", "cold", n),
            "cpu_per_image_ms": ratio(median("fl-ckpt", "cold", n, key="cpu_s"), n / 1000),
            "skopeo_cpu_per_image_ms": ratio(median("skopeo", "cold", n, key="cpu_s"), n / 1000),
            "noop_s": median("fl-ckpt", "noop", n), "ref_noop_s": median("ref", "noop", n),
            "skopeo_noop_s": median("skopeo", "noop", n),
            "peak_rss_mib": max([r["maxrss_mib"] for r in ROWS if r["tool"].startswith("fl")
                                 and r["images"] == n and r["rtt_ms"] == 0] or [0]),
        }
        s["ckpt_ratio"] = ratio(s["cold_ckpt_s"], s["cold_s"])
        s["cpu_vs_skopeo"] = ratio(s["cpu_per_image_ms"], s["skopeo_cpu_per_image_ms"])
        s["noop_vs_ref"] = ratio(s["noop_s"], s["ref_noop_s"])
        out["summary"].append(s)
        lines.append("%6d images: cold %.2f s with checkpoint / %.2f s without = %.3fx (goal <= 1.15); "
                     "CPU %.3f ms/image vs skopeo %.3f = %.3fx (goal <= 0.3); no-op %.2f s vs ref %.2f s = "
                     "%.3fx (goal <= 1.2); skopeo cold %.2f s, no-op %.2f s; peak RSS %.1f MiB"
                     % (n, s["cold_ckpt_s"], s["cold_s"], s["ckpt_ratio"] or 0, s["cpu_per_image_ms"] or 0,
                        s["skopeo_cpu_per_image_ms"] or 0, s["cpu_vs_skopeo"] or 0, s["noop_s"],
                        s["ref_noop_s"], s["noop_vs_ref"] or 0, s["skopeo_cold_s"], s["skopeo_noop_s"],
                        s["peak_rss_mib"]))
    for rtt in rtts:
        fl, ref, sk = (median(t, "noop", lat_n, rtt) for t in ("fl", "ref", "skopeo"))
        out["summary"].append({"rtt_ms": rtt, "images": lat_n, "noop_s": fl, "ref_noop_s": ref,
                               "skopeo_noop_s": sk, "vs_skopeo": ratio(fl, sk), "vs_ref": ratio(fl, ref)})
        lines.append("%3d ms RTT, %d tags no-op: freightliner %.2f s, reference %.2f s (%.2fx), skopeo %.2f s "
                     "(%.3fx; goal <= 0.1)" % (rtt, lat_n, fl, ref, ratio(fl, ref) or 0, sk, ratio(fl, sk) or 0))
    plan = [r for r in ROWS if r["phase"] == "plan"]
    if plan:
        lines.append("plan of %d tags (dry run): peak RSS %.1f MiB (goal <= 64), %.1f s"
                     % (plan[0]["images"], plan[0]["maxrss_mib"], plan[0]["wall_s"]))
    out["lines"] = lines
    return out


def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", default=os.environ.get("BENCH_SCALE_IMAGES", "2000,10000"))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--rtt", default=os.environ.get("BENCH_RTT", "20,50"))
    ap.add_argument("--lat-images", type=int, default=int(os.environ.get("BENCH_LAT_IMAGES", "2000")))
    ap.add_argument("--lat-runs", type=int, default=int(os.environ.get("BENCH_LAT_RUNS", "1")))
    ap.add_argument("--plan-tags", type=int, default=int(os.environ.get("BENCH_PLAN_TAGS", "100000")))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "scale.json"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in a.images.split(",") if x]
    rtts = [int(x) for x in a.rtt.split(",") if x]
    WORK = tempfile.mkdtemp(prefix="freightliner-bench-scale-")
    os.makedirs(os.path.join(WORK, "logs"))
    log("work directory %s; load %.2f; %s", WORK, loadavg(), subprocess.run(
        ["skopeo", "--version"], capture_output=True, text=True).stdout.strip())
    fleets = []
    try:
        lat = None
        for n in sizes:
            f = Fleet(WORK, n)
            fleets.append(f)
            dsts = scale_runs(f, a.runs)
            if n == a.lat_images:
                lat = (f, dsts)
        if rtts and a.lat_images:
            if lat is None:
                f = Fleet(WORK, a.lat_images)
                fleets.append(f)
                d1, d3 = f.dst(), f.dst()
                for argv in (fl_replicate(f.host, d1), skopeo_sync(f, f.host, d3)):
                    subprocess.run(argv, check=True, capture_output=True)
                lat = (f, {"fl": d1, "skopeo": d3})
            latency_runs(lat[0], lat[1], rtts, a.lat_runs)
        for f in fleets:
            f.stop()
        fleets = []
        if a.plan_tags:
            plan_memory(WORK, a.plan_tags)
        out = report(sizes, a.lat_images, rtts)
        out["load_end"] = loadavg()
        out["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
        for line in out["lines"]:
            print(line)
        log("results in %s", a.out)
    finally:
        for f in fleets:
            f.stop()
        if not a.keep:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
