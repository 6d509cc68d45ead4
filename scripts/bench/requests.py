#!/usr/bin/env python3
"""The HTTP requests of a Freightliner run, from its debug log.

  FREIGHTLINER_LOG_LEVEL=debug freightliner replicate ... 2> run.log
  scripts/bench/requests.py --log run.log --src HOST:PORT [--json OUT]

Each `METHOD URL -> STATUS (N ms)` line of the log is one request. Prints,
per registry (src/dst) and kind of request, how many there were, their
median and mean latency, and how many were in flight on average over the
run (sum of latencies / span), so where the time of a copy goes can be
read off: control requests (HEAD, POST) against data (GET/PUT of blobs).
"""
import argparse
import collections
import datetime
import json
import re
import statistics

LINE = re.compile(r"(\S+?)Z? debug (\w+) (\S+) -> (\d+) \((\d+) ms\)")


def kind(method, url, status):
    if "/manifests/" in url:
        return "%s manifest %s" % (method, status)
    if "mount=" in url:
        return "POST mount %s" % status
    if "/blobs/uploads" in url:
        return "%s upload %s" % (method, status)
    if "/blobs/" in url:
        return "%s blob %s" % (method, status)
    if "tags/list" in url or "_catalog" in url:
        return "%s list %s" % (method, status)
    if url.rstrip("/").endswith("/v2"):
        return "%s ping %s" % (method, status)
    return "%s other %s" % (method, status)


def analyse(path, src):
    reqs = []
    for line in open(path, errors="replace"):
        m = LINE.search(line)
        if not m:
            continue
        ts, method, url, status, ms = m.groups()
        end = datetime.datetime.fromisoformat(ts).timestamp()
        side = "src" if src and "//%s/" % src in url else "dst"
        reqs.append({"start": end - int(ms) / 1000.0, "end": end, "side": side,
                     "kind": kind(method, url, status), "ms": int(ms)})
    if not reqs:
        return {"requests": 0, "span_s": 0, "kinds": []}
    t0 = min(r["start"] for r in reqs)
    t1 = max(r["end"] for r in reqs)
    span = max(t1 - t0, 1e-3)
    groups = collections.defaultdict(list)
    for r in reqs:
        groups[(r["side"], r["kind"])].append(r["ms"])
    kinds = []
    for (side, k), v in sorted(groups.items(), key=lambda kv: (kv[0][0], -sum(kv[1]))):
        kinds.append({"side": side, "kind": k, "count": len(v),
                      "median_ms": statistics.median(v), "mean_ms": round(sum(v) / len(v), 1),
                      "in_flight": round(sum(v) / 1000.0 / span, 2)})
    per_side = collections.Counter(r["side"] for r in reqs)
    return {"requests": len(reqs), "span_s": round(span, 3), "per_side": dict(per_side),
            "kinds": kinds}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--src", help="the source registry host:port (other hosts are dst)")
    ap.add_argument("--title", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    res = analyse(a.log, a.src)
    print("%s%d requests over %.2f s (%s)" % (a.title and a.title + ": ", res["requests"],
                                               res["span_s"], ", ".join(
        "%s %d" % kv for kv in sorted(res.get("per_side", {}).items()))))
    print("  %-4s %-22s %6s %10s %10s %10s" % ("side", "request", "count", "median", "mean",
                                              "in flight"))
    for k in res["kinds"]:
        print("  %-4s %-22s %6d %7d ms %7.1f ms %10.2f" % (k["side"], k["kind"], k["count"],
                                                        k["median_ms"], k["mean_ms"],
                                                        k["in_flight"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
