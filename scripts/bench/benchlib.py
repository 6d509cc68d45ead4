#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (standard library only).

  benchlib.py blobs --data DIR --out FILE
      Unique blobs (configs and layers, not manifests) of a registry's
      filesystem storage: one line "REPOSITORY HEX PATH" per blob, the
      repository being the first (by name) that links it.
  benchlib.py sync-yaml --registry HOST --out FILE
      A `skopeo sync --src yaml` file listing every repository of HOST's
      catalog with all its tags (plain HTTP).
  benchlib.py verify --src HOST --dst HOST [--map same|basename] [--shallow]
      Every tag of every source repository must exist at the destination
      (repository renamed by --map) with the same manifest digest; unless
      --shallow, the manifest bytes must hash to that digest, every child
      of an index must be there too, and every config and layer must exist
      in the destination repository. Exit status 1 and a list of problems
      otherwise.
  benchlib.py verify-blobs --dst HOST --jobs FILE
      Every blob of a jobs file (as `blobs` writes) exists in its repository
      at HOST with the file's size.
  benchlib.py report --data FILE --meta FILE --json OUT
      The table of medians, the ratios against the goals, and the JSON.
"""
import argparse
import hashlib
import http.client
import json
import os
import statistics
import sys
import threading
import urllib.parse

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


# ---- blobs -------------------------------------------------------------------

def cmd_blobs(a):
    v2 = os.path.join(a.data, "docker", "registry", "v2")
    repos_root = os.path.join(v2, "repositories")
    owner = {}
    for dirpath, dirnames, filenames in os.walk(repos_root):
        dirnames.sort()
        if os.path.basename(os.path.dirname(dirpath)) != "sha256" or "link" not in filenames:
            continue
        parts = os.path.relpath(dirpath, repos_root).split(os.sep)
        # REPO.../_layers/sha256/HEX/link
        if len(parts) < 4 or parts[-3] != "_layers":
            continue
        repo, hexd = "/".join(parts[:-3]), parts[-1]
        if hexd not in owner or repo < owner[hexd]:
            owner[hexd] = repo
    total = 0
    with open(a.out, "w") as f:
        for hexd, repo in sorted(owner.items(), key=lambda kv: (kv[1], kv[0])):
            path = os.path.join(v2, "blobs", "sha256", hexd[:2], hexd, "data")
            total += os.path.getsize(path)
            f.write("%s %s %s\n" % (repo, hexd, path))
    print("%d %d" % (len(owner), total))


# ---- a tiny registry client --------------------------------------------------

class Client:
    """Plain HTTP, one keep-alive connection per thread."""

    def __init__(self, host):
        self.host = host
        self.local = threading.local()

    def request(self, method, path, headers=None):
        for attempt in range(3):
            c = getattr(self.local, "c", None)
            if c is None:
                c = self.local.c = http.client.HTTPConnection(self.host, timeout=120)
            try:
                c.request(method, path, headers=headers or {})
                r = c.getresponse()
                return r, r.read()
            except (http.client.HTTPException, OSError):
                self.local.c = None
                if attempt == 2:
                    raise

    def paged(self, path, key):
        out = []
        while path:
            r, body = self.request("GET", path)
            if r.status != 200:
                raise RuntimeError("GET %s%s: %d" % (self.host, path, r.status))
            out += json.loads(body).get(key) or []
            link = r.getheader("Link")
            path = None
            if link and 'rel="next"' in link:
                path = link[link.index("<") + 1:link.index(">")]
        return out

    def catalog(self):
        return self.paged("/v2/_catalog?n=1000", "repositories")

    def tags(self, repo):
        return self.paged("/v2/%s/tags/list?n=1000" % repo, "tags")


def cmd_sync_yaml(a):
    c = Client(a.registry)
    lines = ["%s:" % a.registry, "  tls-verify: false", "  images:"]
    for repo in c.catalog():
        lines.append("    %s: []" % repo)  # [] = every tag
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---- verification ------------------------------------------------------------

def parallel(items, fn, n=8):
    items = list(items)
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not items:
                    return
                it = items.pop()
            fn(it)
    ts = [threading.Thread(target=work) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def cmd_verify(a):
    src, dst = Client(a.src), Client(a.dst)
    problems, lock = [], threading.Lock()
    checked = {"tags": 0, "manifests": 0, "blobs": 0}
    seen_blobs = set()

    def problem(msg):
        with lock:
            problems.append(msg)

    def dst_repo(repo):
        return repo.rsplit("/", 1)[-1] if a.map == "basename" else repo

    def head_digest(c, repo, ref):
        r, _ = c.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref), {"Accept": ACCEPT})
        return r.status, r.getheader("Docker-Content-Digest")

    def check_manifest(repo, digest, depth=0):
        r, body = dst.request("GET", "/v2/%s/manifests/%s" % (repo, digest), {"Accept": ACCEPT})
        with lock:
            checked["manifests"] += 1
        if r.status != 200:
            return problem("%s/%s@%s: manifest missing (%d)" % (a.dst, repo, digest, r.status))
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest:
            return problem("%s/%s@%s: manifest bytes hash to %s" % (a.dst, repo, digest, actual))
        m = json.loads(body)
        mt = m.get("mediaType") or r.getheader("Content-Type")
        if mt in INDEX_TYPES or "manifests" in m:
            for child in m.get("manifests", []):
                if depth < 3:
                    check_manifest(repo, child["digest"], depth + 1)
            return
        for d in [m.get("config")] + list(m.get("layers") or []):
            if not d:
                continue
            key = (repo, d["digest"])
            with lock:
                if key in seen_blobs:
                    continue
                seen_blobs.add(key)
            rb, _ = dst.request("HEAD", "/v2/%s/blobs/%s" % (repo, d["digest"]))
            with lock:
                checked["blobs"] += 1
            if rb.status != 200:
                problem("%s/%s: blob %s missing (%d)" % (a.dst, repo, d["digest"], rb.status))
            elif rb.getheader("Content-Length") not in (None, str(d.get("size"))):
                problem("%s/%s: blob %s has size %s, manifest says %s" % (
                    a.dst, repo, d["digest"], rb.getheader("Content-Length"), d.get("size")))

    work = [(repo, tag) for repo in src.catalog() for tag in src.tags(repo)]

    def check(item):
        repo, tag = item
        s_status, s_digest = head_digest(src, repo, tag)
        d_status, d_digest = head_digest(dst, dst_repo(repo), tag)
        with lock:
            checked["tags"] += 1
        if s_status != 200 or not s_digest:
            return problem("%s/%s:%s: source HEAD answered %d" % (a.src, repo, tag, s_status))
        if d_status != 200:
            return problem("%s/%s:%s: missing at the destination (%d)" % (a.dst, dst_repo(repo), tag, d_status))
        if d_digest != s_digest:
            return problem("%s/%s:%s: digest %s, source has %s" % (a.dst, dst_repo(repo), tag, d_digest, s_digest))
        if not a.shallow:
            check_manifest(dst_repo(repo), s_digest)

    parallel(work, check)
    if not work:
        problems.append("the source %s has no tags" % a.src)
    if problems:
        for p in sorted(problems)[:50]:
            print("VERIFY FAILED: " + p, file=sys.stderr)
        print("VERIFY FAILED: %d problems (%s)" % (len(problems), json.dumps(checked)), file=sys.stderr)
        return 1
    print("verified %d tags, %d manifests, %d blobs: every destination digest equals the source's"
          % (checked["tags"], checked["manifests"], checked["blobs"]))
    return 0


def cmd_verify_blobs(a):
    dst = Client(a.dst)
    jobs = [l.split() for l in open(a.jobs) if l.strip()]
    problems = []

    def check(job):
        repo, hexd, path = job
        r, _ = dst.request("HEAD", "/v2/%s/blobs/sha256:%s" % (repo, hexd))
        if r.status != 200 or r.getheader("Content-Length") != str(os.path.getsize(path)):
            problems.append("%s/%s: blob sha256:%s: %d, length %s" % (
                a.dst, repo, hexd, r.status, r.getheader("Content-Length")))
    parallel(jobs, check)
    if problems:
        for p in sorted(problems)[:50]:
            print("VERIFY FAILED: " + p, file=sys.stderr)
        return 1
    print("verified %d blobs at %s" % (len(jobs), a.dst))
    return 0


# ---- the report --------------------------------------------------------------

TOOLS = ["freightliner", "freightliner-lua", "skopeo", "upload-ref"]
LABEL = {"freightliner": "freightliner replicate", "freightliner-lua": "freightliner run copy_all.lua",
         "skopeo": "skopeo sync", "upload-ref": "upload-only (curl)"}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def load_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def summarize(rows):
    out = {}
    for tool in TOOLS:
        mine = [r for r in rows if r["tool"] == tool]
        if not mine:
            continue
        runs = sorted({r["run"] for r in mine})
        cold = {r["run"]: r for r in mine if r["phase"] == "cold"}
        noop = {r["run"]: r for r in mine if r["phase"] == "noop"}
        peak = [max(cold[k]["maxrss_kib"] if k in cold else 0,
                    noop[k]["maxrss_kib"] if k in noop else 0) for k in runs]
        out[tool] = {
            "cold_wall_s": median([cold[k]["wall_s"] for k in cold]),
            "noop_wall_s": median([noop[k]["wall_s"] for k in noop]) if noop else None,
            "cold_cpu_s": median([cold[k]["user_s"] + cold[k]["sys_s"] for k in cold]),
            "noop_cpu_s": median([noop[k]["user_s"] + noop[k]["sys_s"] for k in noop]) if noop else None,
            "peak_rss_mib": median([p / 1024.0 for p in peak]),
            "cold_dst_registry_cpu_s": median([cold[k]["dst_cpu_s"] for k in cold]),
            "cold_src_registry_cpu_s": median([cold[k].get("src_cpu_s") for k in cold]),
            "cold_other_cpu_s": median([cold[k]["other_cpu_s"] for k in cold]),
            "runs": len(runs),
        }
    return out


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def goals_for(s, tool):
    fl, sk, up = s.get(tool), s.get("skopeo"), s.get("upload-ref")
    if not fl:
        return []
    g = []

    def add(name, value, limit, text):
        ok = None if value is None else value <= limit
        g.append({"goal": name, "value": value, "limit": limit, "text": text,
                  "result": "n/a" if ok is None else ("PASS" if ok else "MISS")})
    if sk:
        add("cold_wall_vs_skopeo", ratio(fl["cold_wall_s"], sk["cold_wall_s"]), 0.6, "cold wall / skopeo")
        add("noop_wall_vs_skopeo", ratio(fl["noop_wall_s"], sk["noop_wall_s"]), 0.1, "no-op wall / skopeo")
        add("cpu_vs_skopeo", ratio(fl["cold_cpu_s"], sk["cold_cpu_s"]), 0.5, "cold CPU (user+sys) / skopeo")
        add("rss_vs_skopeo", ratio(fl["peak_rss_mib"], sk["peak_rss_mib"]), 1.0 - 1e-9,
            "peak RSS / skopeo (below 1)")
    if up:
        add("cold_wall_vs_upload", ratio(fl["cold_wall_s"], up["cold_wall_s"]), 1.15,
            "cold wall / upload-only reference")
    add("peak_rss_mib", fl["peak_rss_mib"], 24.0, "peak RSS in MiB")
    return g


def fmt(v, unit="", nd=2):
    return "-" if v is None else ("%.*f%s" % (nd, v, unit))


def cmd_report(a):
    rows = load_rows(a.data)
    meta = json.load(open(a.meta)) if a.meta else {}
    s = summarize(rows)
    w = sys.stdout.write
    w("\nmedians of %d run(s)   (CPU = user+sys of the tool's process tree; RSS = largest process)\n"
      % max([v["runs"] for v in s.values()] or [0]))
    w("%-30s %10s %10s %10s %10s %12s %12s\n" % ("tool", "cold wall", "no-op wall", "cold CPU",
                                                 "peak RSS", "src reg CPU", "dst reg CPU"))
    for tool in TOOLS:
        if tool in s:
            v = s[tool]
            w("%-30s %10s %10s %10s %10s %12s %12s\n" % (
                LABEL[tool], fmt(v["cold_wall_s"], " s"), fmt(v["noop_wall_s"], " s"),
                fmt(v["cold_cpu_s"], " s"), fmt(v["peak_rss_mib"], " MiB", 1),
                fmt(v["cold_src_registry_cpu_s"], " s"), fmt(v["cold_dst_registry_cpu_s"], " s")))
    goals = {}
    for tool in ("freightliner", "freightliner-lua"):
        g = goals_for(s, tool)
        if not g:
            continue
        goals[tool] = g
        w("\n%s: ratios and goals\n" % LABEL[tool])
        for x in g:
            lim = "<= %.2f" % x["limit"] if x["goal"] != "rss_vs_skopeo" else "< 1.00"
            w("  %-36s %8s   goal %-8s %s\n" % (x["text"], fmt(x["value"], "", 3), lim, x["result"]))
    w("\nevery measurement (wall s / CPU s / RSS MiB; registries' CPU s; other processes' CPU s;"
      " * = machine not quiet before):\n")
    for r in sorted(rows, key=lambda r: (r["run"], r["seq"])):
        w("  run %d #%-2d %-17s %-5s %7.2f / %6.2f / %6.1f   src %5.2f  dst %5.2f  other %5.2f%s\n" % (
            r["run"], r["seq"], r["tool"], r["phase"], r["wall_s"], r["user_s"] + r["sys_s"],
            r["maxrss_kib"] / 1024.0, r.get("src_cpu_s", 0), r["dst_cpu_s"], r["other_cpu_s"],
            "" if r.get("quiet_before", True) else " *"))
    result = {"meta": meta, "medians": s, "goals": goals, "measurements": rows}
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    w("\nresults written to %s\n" % a.json)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("blobs")
    b.add_argument("--data", required=True)
    b.add_argument("--out", required=True)
    y = sub.add_parser("sync-yaml")
    y.add_argument("--registry", required=True)
    y.add_argument("--out", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--src", required=True)
    v.add_argument("--dst", required=True)
    v.add_argument("--map", choices=["same", "basename"], default="same")
    v.add_argument("--shallow", action="store_true")
    vb = sub.add_parser("verify-blobs")
    vb.add_argument("--dst", required=True)
    vb.add_argument("--jobs", required=True)
    r = sub.add_parser("report")
    r.add_argument("--data", required=True)
    r.add_argument("--meta")
    r.add_argument("--json", required=True)
    a = ap.parse_args()
    fn = {"blobs": cmd_blobs, "sync-yaml": cmd_sync_yaml, "verify": cmd_verify,
          "verify-blobs": cmd_verify_blobs, "report": cmd_report}[a.cmd]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
