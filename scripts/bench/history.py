#!/usr/bin/env python3
"""Benchmark history: one JSON line per `make bench` run, and a regression check.

    history.py append RESULTS.json [--history bench/history.jsonl]
    history.py compare [--history bench/history.jsonl] [--threshold 0.10]

append reads the results.json that scripts/bench.sh writes (meta, medians,
goals) and appends one line: date, commit, machine kind, configuration, the
medians of every tool and every ratio of every goal. The machine kind is
what makes two runs comparable: CPU model, core count and memory.

compare takes the newest line and the newest earlier line of the same
machine kind and configuration, and reports every ratio side by side. All
ratios are "lower is better" (tool / reference), so a ratio more than
THRESHOLD (default 10%) above the earlier one is a regression: exit 1.
Exit 0 when nothing regressed or there is nothing to compare with (said so).
"""
import argparse
import json
import os
import sys

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "history.jsonl")


def machine_kind(meta):
    return "%s x%s %s MiB" % (meta.get("cpu", "?"), meta.get("nproc", "?"),
                              (int(meta.get("mem_total_mib", 0)) // 1024) * 1024)


def ratios_of(results):
    out = {}
    for tool, goals in (results.get("goals") or {}).items():
        for g in goals:
            if g.get("value") is not None:
                out["%s.%s" % (tool, g["goal"])] = g["value"]
    return out


def cmd_append(a):
    with open(a.results) as f:
        res = json.load(f)
    meta = res.get("meta", {})
    line = {
        "date": meta.get("date"),
        "commit": meta.get("commit"),
        "machine": machine_kind(meta),
        "loadavg_at_start": meta.get("loadavg_at_start"),
        "config": meta.get("config", {}),
        "medians": res.get("medians", {}),
        "ratios": ratios_of(res),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.history)), exist_ok=True)
    with open(a.history, "a") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")
    print("bench history: appended %d ratio(s) for %s on %s to %s"
          % (len(line["ratios"]), line["commit"], line["machine"], a.history))
    return 0


def load(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for n, text in enumerate(f, 1):
            text = text.strip()
            if not text:
                continue
            try:
                rows.append(json.loads(text))
            except ValueError as e:
                print("bench history: %s:%d is not JSON (%s); skipped" % (path, n, e), file=sys.stderr)
    return rows


def cmd_compare(a):
    rows = load(a.history)
    if not rows:
        print("bench compare: no history in %s (run make bench first)" % a.history)
        return 0
    new = rows[-1]
    old = next((r for r in reversed(rows[:-1])
                if r.get("machine") == new.get("machine") and r.get("config") == new.get("config")), None)
    if old is None:
        print("bench compare: %s on %s has no earlier run of the same machine kind and size to compare with"
              % (new.get("commit"), new.get("machine")))
        return 0
    print("bench compare: %s (%s) against %s (%s), machine %s, threshold +%d%%"
          % (new.get("commit"), new.get("date"), old.get("commit"), old.get("date"),
             new.get("machine"), round(a.threshold * 100)))
    regressions = 0
    for name in sorted(set(new["ratios"]) | set(old["ratios"])):
        n, o = new["ratios"].get(name), old["ratios"].get(name)
        if n is None or o is None:
            print("  %-48s %8s  %8s  (only in one run)" % (name, "-" if o is None else "%.3f" % o,
                                                           "-" if n is None else "%.3f" % n))
            continue
        change = (n - o) / o if o else 0.0
        bad = change > a.threshold
        regressions += bad
        print("  %-48s %8.3f  %8.3f  %+6.1f%%%s" % (name, o, n, change * 100, "  REGRESSION" if bad else ""))
    if regressions:
        print("bench compare: %d ratio(s) regressed by more than %d%%" % (regressions, round(a.threshold * 100)))
        return 1
    print("bench compare: no regression")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    ap = sub.add_parser("append")
    ap.add_argument("results")
    ap.add_argument("--history", default=DEFAULT)
    cp = sub.add_parser("compare")
    cp.add_argument("--history", default=DEFAULT)
    cp.add_argument("--threshold", type=float, default=0.10)
    a = p.parse_args(argv)
    return cmd_append(a) if a.cmd == "append" else cmd_compare(a)


if __name__ == "__main__":
    sys.exit(main())
