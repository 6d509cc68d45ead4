#!/usr/bin/env python3
"""Run the end-to-end scenarios of a suite and write e2e/reports/results.json.

usage: runner.py quick|full [--jobs N] [--only REGEX] [--list]

Scenarios are the @scenario functions of e2e/scenarios/*.py. Each runs in
its own process (so a hang or a crash is contained) with its own temp dir
under $E2E_ROOT (run.sh makes it; otherwise a fresh mkdtemp), up to --jobs
at a time, the longest first. Whatever happens to a scenario, everything
it started (registries, token servers, fault proxies, Freightliner) is
stopped afterwards; the shared read-only sources are stopped at the end and
checked to be unchanged; finally no process mentioning the temp root may
remain (pgrep -f), or the suite fails.

Output: one line per scenario, then `e2e: N passed, M failed` (skipped
scenarios count as neither; they are listed in results.json). Exit status 1
if anything failed. E2E_KEEP=1 keeps the temp dirs.
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

LIB = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.dirname(LIB)
SCENARIOS = os.path.join(E2E, "scenarios")
REPORTS = os.path.join(E2E, "reports")
sys.path.insert(0, LIB)

import e2e  # noqa: E402
from e2e import harness_registry  # noqa: E402


def load(path):
    name = "scn_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def discover(suite):
    found = []
    for fname in sorted(os.listdir(SCENARIOS)):
        if not fname.endswith(".py") or fname.startswith("_"):
            continue
        path = os.path.join(SCENARIOS, fname)
        mod = load(path)
        fns = [v for v in vars(mod).values() if callable(v) and hasattr(v, "e2e")]
        fns.sort(key=lambda f: f.__code__.co_firstlineno)
        for fn in fns:
            found.append({"name": fn.__name__, "file": path, "func": fn.__name__, **fn.e2e})
    names = [s["name"] for s in found]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit("duplicate scenario names: %s" % ", ".join(sorted(dup)))
    return [s for s in found if suite in s["suites"]]


# ---------------------------------------------------------------------------
# child side: one scenario in this process
# ---------------------------------------------------------------------------
def child(path, func):
    root, suite = os.environ["E2E_ROOT"], os.environ["E2E_SUITE"]
    workdir, result_path, log = (os.environ["E2E_WORKDIR"], os.environ["E2E_RESULT"],
                                 os.environ["E2E_LOG"])
    fn = getattr(load(path), func)
    ctx = e2e.Context(func, suite, root, workdir, log)
    status, message = "failed", ""
    bug = fn.e2e.get("known_bug")
    try:
        fn(ctx)
        status = "passed"
        message = "; ".join(ctx.notes)
        if bug and len(bug) > 2 and bug[2]:
            message = ("intermittent known bug did not show this time: %s. " % bug[0]) + message
        elif bug:
            message = ("known bug no longer reproduces, remove the marker: %s. " % bug[0]) + message
    except e2e.Skip as s:
        status, message = "skipped", str(s)
    except e2e.Failure as f:
        message = str(f)
        ctx.log("FAILED: %s\n%s", message, traceback.format_exc())
    except Exception as ex:  # noqa: BLE001
        message = "%s: %s" % (type(ex).__name__, ex)
        ctx.log("ERROR: %s", traceback.format_exc())
    finally:
        if bug and status == "failed" and re.search(bug[1], message):
            status, message = "known_bug", "known bug: %s. This run: %s" % (bug[0], message)
        try:
            ctx.cleanup()
        except Exception:  # noqa: BLE001
            pass
        with open(result_path, "w") as f:
            json.dump({"status": status, "message": message}, f)
    return 0


# ---------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------
def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cleanup_dir(d, root):
    """Stop every registry (info.json) and process (*.pid) left under d."""
    for dirpath, _, files in os.walk(d):
        if "info.json" in files:
            try:
                harness_registry.stop(dirpath)
            except Exception:  # noqa: BLE001
                pass
        for name in files:
            if name.endswith(".pid"):
                try:
                    fields = open(os.path.join(dirpath, name)).read().split()
                    pid, started = int(fields[0]), fields[1] if len(fields) > 1 else None
                except (OSError, ValueError, IndexError):
                    continue
                if root in cmdline(pid) or (started and e2e.proc_start_time(pid) == started):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass


def freeze_binary(src, d):
    os.makedirs(d, exist_ok=True)
    dst = os.path.join(d, "freightliner")
    for _ in range(20):
        try:
            shutil.copy2(os.path.realpath(src), dst + ".tmp")
            os.replace(dst + ".tmp", dst)
            if subprocess.run([dst, "--version"], capture_output=True, timeout=30).returncode == 0:
                return dst
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.5)  # caught mid-link by a concurrent build
    return None


def strays(root):
    p = subprocess.run(["pgrep", "-f", "--", root], capture_output=True, text=True)
    pids = [int(x) for x in p.stdout.split()]
    return [(pid, cmdline(pid)) for pid in pids if pid != os.getpid() and cmdline(pid)]


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("suite", choices=["quick", "full", "soak", "fault-rate", "serve-bench"])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("E2E_JOBS", "3")))
    ap.add_argument("--only", help="regex: run only matching scenarios")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--file", help="only the scenarios of this file")
    a = ap.parse_args()
    scenarios = discover(a.suite)
    if a.file:
        scenarios = [s for s in scenarios if os.path.samefile(s["file"], a.file)]
    if a.only:
        scenarios = [s for s in scenarios if re.search(a.only, s["name"])]
    if a.list:
        for s in scenarios:
            print("%-40s timeout %4ds  %s" % (s["name"], s["timeout"], os.path.basename(s["file"])))
        return 0
    if not os.access(e2e.BIN, os.X_OK):
        print("e2e: the binary %s does not exist (make build)" % e2e.BIN)
        print("e2e: 0 passed, 1 failed")
        return 1

    root = os.environ.get("E2E_ROOT") or tempfile.mkdtemp(prefix="fl-e2e-")
    root = os.path.abspath(root)
    os.environ["E2E_ROOT"] = root
    os.environ["E2E_SUITE"] = a.suite
    # the binary under test, frozen for the whole run: others may rebuild
    # bin/freightliner meanwhile (it is self-contained: the stdlib is inside)
    tested = freeze_binary(e2e.BIN, os.path.join(root, "bin"))
    if tested is None:
        print("e2e: cannot copy a working %s (make build)" % e2e.BIN)
        print("e2e: 0 passed, 1 failed")
        return 1
    os.environ["FREIGHTLINER_BIN"] = tested
    keep = os.environ.get("E2E_KEEP") == "1"
    logs = os.path.join(REPORTS, "logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs, exist_ok=True)
    print("e2e: suite %s, %d scenarios, %d at a time, binary %s, temp %s"
          % (a.suite, len(scenarios), a.jobs, e2e.BIN, root), flush=True)

    binary_version = subprocess.run([tested, "--version"], capture_output=True, text=True).stdout.strip()
    started = time.time()
    queue = sorted(scenarios, key=lambda s: -s["weight"])
    running = {}  # name -> (scenario, Popen, t0, workdir)
    results = {}

    def finish(name, status, message, seconds):
        results[name] = {"name": name, "status": status,
                         "passed": None if status in ("skipped", "known_bug") else status == "passed",
                         "skipped": status == "skipped",
                         "duration_seconds": round(seconds, 2), "message": message}
        tag = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "known_bug": "KBUG"}[status]
        line = "%s %-38s %6.1fs" % (tag, name, seconds)
        if message:
            line += "  " + message.replace("\n", " | ")[:300]
        print(line, flush=True)

    def reap(name, interrupted=False, timed_out=False):
        s, p, t0, workdir = running.pop(name)
        seconds = time.time() - t0
        result_path = os.path.join(root, "results", name + ".json")
        log = os.path.join(logs, name + ".log")
        cleanup_dir(workdir, root)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        try:
            with open(result_path) as f:
                r = json.load(f)
            finish(name, r["status"], r["message"], seconds)
        except (OSError, ValueError):
            if interrupted:
                why = "interrupted"
            elif timed_out:
                why = "timed out after %ds (killed)" % s["timeout"]
            else:
                why = "scenario process died (exit %s)" % p.returncode
            finish(name, "failed", "%s; log: %s" % (why, tail(log, 600)), seconds)

    os.makedirs(os.path.join(root, "results"), exist_ok=True)
    interrupted = False

    def on_signal(signum, _frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while queue or running:
            while queue and len(running) < a.jobs:
                s = queue.pop(0)
                workdir = os.path.join(root, "scenarios", s["name"])
                os.makedirs(workdir)
                log = os.path.join(logs, s["name"] + ".log")
                env = dict(os.environ, E2E_WORKDIR=workdir, E2E_LOG=log,
                           E2E_RESULT=os.path.join(root, "results", s["name"] + ".json"),
                           PYTHONDONTWRITEBYTECODE="1")
                out = open(log, "a")
                p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child",
                                      s["file"], s["func"]], env=env, stdout=out, stderr=out,
                                     start_new_session=True)
                out.close()
                running[s["name"]] = (s, p, time.time(), workdir)
            time.sleep(0.05)
            for name in list(running):
                s, p, t0, _ = running[name]
                if p.poll() is not None:
                    reap(name)
                elif time.time() - t0 > s["timeout"]:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()
                    reap(name, timed_out=True)
    except KeyboardInterrupt:
        interrupted = True
        print("e2e: interrupted; stopping everything", flush=True)
        for name in list(running):
            _, p, _, _ = running[name]
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            reap(name, interrupted=True)
        for s in queue:
            finish(s["name"], "failed", "not run: interrupted", 0)

    # the shared read-only sources: unchanged, then stopped
    t0 = time.time()
    shared = os.path.join(root, "shared")
    changed = []
    if os.path.isdir(shared):
        for preset in sorted(os.listdir(shared)):
            done = os.path.join(shared, preset, "seeded.json")
            if os.path.exists(done):
                with open(done) as f:
                    info = json.load(f)
                if e2e.Registry(info["info"]).fingerprint() != info["fingerprint"]:
                    changed.append(preset)
        cleanup_dir(shared, root)
    if changed:
        finish("shared_sources_read_only", "failed",
               "a scenario wrote to the shared source(s): %s" % ", ".join(changed), time.time() - t0)

    # nothing of ours may survive
    left = strays(root)
    if left:
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        finish("no_stray_processes", "failed", "processes left running (killed now): %s" %
               "; ".join("%d %s" % (pid, cmd[:160]) for pid, cmd in left), 0)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)

    order = [s["name"] for s in scenarios] + [n for n in results if n not in
                                              {s["name"] for s in scenarios}]
    listed = [results[n] for n in order if n in results]
    passed = sum(1 for r in listed if r["status"] == "passed")
    failed = sum(1 for r in listed if r["status"] == "failed")
    skipped = [r for r in listed if r["status"] == "skipped"]
    known = [r for r in listed if r["status"] == "known_bug"]
    report = {"suite": a.suite, "scenarios": listed, "passed": passed, "failed": failed,
              "skipped": len(skipped), "known_bugs": len(known), "duration_seconds": round(time.time() - started, 1),
              "binary": e2e.BIN, "binary_version": binary_version, "interrupted": interrupted}
    os.makedirs(REPORTS, exist_ok=True)
    with open(os.path.join(REPORTS, "results.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print()
    for r in listed:
        if r["status"] == "failed":
            print("failed:  %s: %s" % (r["name"], r["message"][:2000]))
    for r in skipped:
        print("skipped: %s: %s" % (r["name"], r["message"]))
    for r in known:
        print("known bug: %s: %s" % (r["name"], r["message"][:600]))
    print("e2e: %s suite in %.0fs; %d skipped, %d known bugs; report e2e/reports/results.json, "
          "logs e2e/reports/logs/" % (a.suite, time.time() - started, len(skipped), len(known)))
    print("e2e: %d passed, %d failed, %d skipped" % (passed, failed, len(skipped)), flush=True)
    return 1 if failed or interrupted or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
