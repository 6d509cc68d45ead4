#!/usr/bin/env python3
"""A core for a long-lived process (issue #10): scoped cancellation, endpoint
lifetimes, bounded threads, retries that hold.

- The REPL on a real terminal (a pty): Ctrl-C stops the running statement
  (a copy stalled by the fault proxy, a pure Lua loop), the next statement
  works, Ctrl-C at an idle prompt clears the line.
- Cancelling one job among several leaves the others and later jobs alone.
- The soak: hundreds of copies through one engine in one process, a random
  third cancelled mid-transfer, a registry object closed while its copies
  run; RSS and threads stay bounded; every job not cancelled verifies.
- The fault rate: multi-repository runs through fault proxies on both sides
  at a 12% per-request fault rate complete (measured over 20 seeded runs by
  `make fault-rate`; a short form in the full suite).
"""
import json
import os
import pty
import random
import select
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

BLOB_GET = r"^/v2/.+/blobs/sha256:"
MANIFEST = r"^/v2/.+/manifests/"
UPLOAD = r"^/v2/.+/blobs/uploads/"
SOAK_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "soak.lua")


# ---------------------------------------------------------------------------
# the REPL through a pseudo-terminal
# ---------------------------------------------------------------------------
class Terminal:
    def __init__(self, ctx, argv, env):
        self.ctx, self.seen = ctx, b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(env)
            os.execv(argv[0], argv)

    def read_until(self, marker, timeout=10.0, start=0):
        end = time.time() + timeout
        while time.time() < end:
            if marker.encode() in self.seen[start:]:
                return True
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    return False
                if not data:
                    return False
                self.seen += data
        return marker.encode() in self.seen[start:]

    def prompt(self, start, timeout=10.0):
        """Wait for a fresh prompt after offset start."""
        return self.read_until("\n> ", timeout, start) or self.read_until("> ", timeout, start)

    def send(self, data):
        self.ctx.log("pty <- %r", data)
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def close(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return status
            self.read_until("\x00", timeout=0.1)
        os.kill(self.pid, signal.SIGKILL)
        return os.waitpid(self.pid, 0)[1]

    def text(self, start=0):
        return self.seen[start:].decode(errors="replace")


@scenario(weight=20, timeout=240)
def repl_ctrl_c_stops_the_statement_only(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    # the first blob download stalls for a minute: the copy hangs there
    sp = ctx.faultproxy(src, [{"method": "GET", "path": BLOB_GET, "action": "stall", "seconds": 60,
                               "max": 1},
                              {"method": "GET", "path": r"/tags/list", "action": "stall", "seconds": 60}])
    hist = os.path.join(ctx.tmp("repl"), "history")
    t = Terminal(ctx, [e2e.BIN, "repl"], {"TERM": "dumb", "FREIGHTLINER_HISTORY": hist})
    try:
        check(t.read_until("> ", 20), "no prompt: %s" % t.text())
        # 1. a copy stalled mid-transfer; Ctrl-C cancels it within a second or so
        mark = len(t.seen)
        t.send('r, m, c = fl.copy("%s/project-a/app:v1.0", "%s/project-a/app:v1.0"); '
               'print("FIRST", r, c, m)\r' % (sp.host, dst.host))
        end = time.time() + 20
        while time.time() < end and not any("/blobs/" in q["path"] for q in sp.faults()):
            time.sleep(0.1)
        check(sp.faults(), "the stall never fired: %s" % t.text(mark))
        time.sleep(0.5)
        t0 = time.time()
        t.send(b"\x03")
        check(t.read_until("\n> ", 15, mark), "the stalled copy did not end after Ctrl-C: %s" % t.text(mark))
        took = time.time() - t0
        check(t.prompt(mark), "no prompt after the cancelled copy: %s" % t.text(mark))
        out = t.text(mark)
        check("CANCELLED" in out or "interrupted" in out,
              "the cancelled statement said neither CANCELLED nor interrupted: %s" % out)
        check("stack traceback" not in out, "an interrupt printed a traceback: %s" % out)
        check(took < 3, "Ctrl-C took %.1f s to stop the copy" % took)
        ctx.note("Ctrl-C ended a statement stalled in a copy in %.2f s", took)
        # 2. the next statement works (same engine, same registries)
        mark = len(t.seen)
        t.send('r, m, c = fl.copy("%s/project-a/web:v1.1", "%s/project-a/web:v1.1"); '
               'print("SECOND", r and r.digest, c, m)\r' % (sp.host, dst.host))
        check(t.read_until("SECOND", 60, mark), "the next copy did not finish: %s" % t.text(mark))
        check(t.prompt(mark), "no prompt after the second copy: %s" % t.text(mark))
        check("SECOND\tsha256:" in t.text(mark), "the copy after Ctrl-C failed: %s" % t.text(mark))
        # 3. a pure Lua loop is interrupted too
        mark = len(t.seen)
        t.send("n = 0; while true do n = n + 1 end\r")
        time.sleep(1)
        t.send(b"\x03")
        check(t.read_until("interrupted", 10, mark), "a Lua loop was not interrupted: %s" % t.text(mark))
        check(t.prompt(mark), "no prompt after the interrupted loop: %s" % t.text(mark))
        # 3b. a request the Lua thread itself makes (a tag listing) stops too
        mark = len(t.seen)
        t.send('reg = fl.registry("%s"); print("TAGS", reg:tags("project-a/app"))\r' % sp.host)
        time.sleep(1.5)
        t0 = time.time()
        t.send(b"\x03")
        check(t.read_until("\n> ", 10, mark), "a stalled listing did not stop on Ctrl-C: %s" % t.text(mark))
        took = time.time() - t0
        check(took < 3, "Ctrl-C took %.1f s to stop a listing" % took)
        check("CANCELLED" in t.text(mark) or "interrupted" in t.text(mark),
              "the listing said neither CANCELLED nor interrupted: %s" % t.text(mark))
        # 4. Ctrl-C at an idle prompt clears the line
        mark = len(t.seen)
        t.send("garbage(")
        time.sleep(0.3)
        t.send(b"\x03")
        time.sleep(0.3)
        t.send('print("AFTER", 1 + 1)\r')
        check(t.read_until("AFTER\t2", 10, mark), "the line was not cleared by Ctrl-C: %s" % t.text(mark))
        check("syntax error" not in t.text(mark) and "unexpected symbol" not in t.text(mark),
              "the cleared text was still evaluated: %s" % t.text(mark))
        # 5. and the REPL still ends normally
        t.prompt(len(t.seen) - 3)
        t.send(b"\x04")
        status = t.close()
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
              "the REPL did not exit 0 after Ctrl-D: %r\n%s" % (status, t.text()))
    finally:
        if t.pid:
            try:
                os.kill(t.pid, signal.SIGKILL)
                os.waitpid(t.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        ctx.log("terminal:\n%s", t.text())
    verify.same_image(ctx, src, "project-a/web", "v1.1", dst, "project-a/web", "v1.1", pull=False)
    check(dst.head_manifest("project-a/app", "v1.0") == 404,
          "the cancelled copy tagged project-a/app:v1.0 at the destination")


# ---------------------------------------------------------------------------
# cancelling one job
# ---------------------------------------------------------------------------
CANCEL_ONE = r'''
local core = require("freightliner.core")
local src, dst = arg[1], arg[2]
local repos = { "project-a/app:v1.0", "project-a/web:v1.1", "project-b/tool:v2.0" }
local jobs = {}
for i, r in ipairs(repos) do
  jobs[i] = assert(fl.submit(src .. "/" .. r, dst .. "/" .. r))
end
fl.sleep(1.0) -- every job is stalled on its first blob now
local t0 = core.now()
assert(jobs[2]:cancel(), "job 2 was not running")
local r2, m2, c2 = jobs[2]:wait()
local took = core.now() - t0
local out = { cancel_seconds = took, cancelled = { ok = r2 ~= nil, code = c2, error = m2 } }
for _, i in ipairs({ 1, 3 }) do
  local r, m, c = jobs[i]:wait()
  out[repos[i]] = { ok = r ~= nil, code = c, error = m, digest = r and r.digest }
end
-- a later job, the cancelled one again: unaffected
local r, m, c = fl.copy(src .. "/" .. repos[2], dst .. "/" .. repos[2])
out.again = { ok = r ~= nil, code = c, error = m }
-- a task cancelled while it copies: its copy and every later one stop
local task_result = {}
local task = fl.spawn(function()
  local a, _, ac = fl.copy(src .. "/project-b/tool:v1.0", dst .. "/task/tool:v1.0")
  local b, _, bc = fl.copy(src .. "/project-b/tool:v1.1", dst .. "/task/tool:v1.1")
  task_result = { first = a ~= nil, first_code = ac, second = b ~= nil, second_code = bc }
end)
fl.spawn(function() fl.sleep(1.0); fl.cancel(task) end)
fl.wait()
out.task = task_result
print(fl.json.encode(out))
'''


@scenario(weight=10, timeout=240)
def cancel_one_job_leaves_the_others(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    # the first blob downloads stall 4 s: every job is mid-way when one is
    # cancelled; project-b/tool's always stall (the task's copies)
    sp = ctx.faultproxy(src, [
        {"method": "GET", "path": r"^/v2/project-a/.+/blobs/sha256:", "action": "stall", "seconds": 4, "max": 3},
        {"method": "GET", "path": r"^/v2/project-b/.+/blobs/sha256:", "action": "stall", "seconds": 4}])
    r = ctx.lua(CANCEL_ONE, sp.host, dst.host, timeout=180)
    check(r.status == 0, "the script failed: %r", r)
    out = json.loads(r.out.strip().splitlines()[-1])
    ctx.log("%s", json.dumps(out, indent=1))
    check(not out["cancelled"]["ok"] and out["cancelled"]["code"] == "CANCELLED",
          "the cancelled job did not end CANCELLED: %s", out["cancelled"])
    check(out["cancel_seconds"] < 1.5, "cancelling one job took %.2f s", out["cancel_seconds"])
    for repo in ("project-a/app:v1.0", "project-b/tool:v2.0"):
        check(out[repo]["ok"], "%s failed beside the cancelled job: %s", repo, out[repo])
        name, tag = repo.split(":")
        verify.same_image(ctx, src, name, tag, dst, name, tag, pull=False)
    check(out["again"]["ok"], "the cancelled copy, submitted again, failed: %s", out["again"])
    verify.same_image(ctx, src, "project-a/web", "v1.1", dst, "project-a/web", "v1.1", pull=False)
    t = out["task"]
    check(t.get("first_code") == "CANCELLED" and t.get("second_code") == "CANCELLED",
          "a cancelled task went on copying: %s", t)
    check(dst.head_manifest("task/tool", "v1.1") == 404, "the cancelled task's later copy was written")
    ctx.note("one job cancelled in %.2f s; the others and later jobs completed", out["cancel_seconds"])


# ---------------------------------------------------------------------------
# the soak
# ---------------------------------------------------------------------------
def soak(ctx, copies, in_flight, destinations, workers=4, image_workers=24):
    src, images = ctx.shared("fleet")
    dsts = ctx.registries(*(["plain"] * destinations))
    # a quarter of the blob downloads stall a moment: cancels land mid-transfer
    sp = ctx.faultproxy(src, [{"method": "GET", "path": BLOB_GET, "action": "stall", "seconds": 0.4,
                               "probability": 0.25}], seed=7)
    tags = sorted({(i["repo"], i["tag"]) for i in images if i.get("tag")})
    jobs, rng = [], random.Random(10)
    for n in range(copies):
        # destinations interleaved: every endpoint is in use within the first
        # jobs, so the RSS baseline is taken after warm-up, not before it
        d = dsts[n % len(dsts)]
        repo, tag = tags[(n // len(dsts)) % len(tags)]
        # each (destination, image) pair is copied once; past that, to a
        # fresh repository name, so every job moves or mounts blobs
        round_ = n // (len(tags) * len(dsts))
        dst_repo = repo if round_ == 0 else "r%d/%s" % (round_, repo)
        jobs.append({"src": "%s/%s:%s" % (sp.host, repo, tag), "dst": "%s/%s:%s" % (d.host, dst_repo, tag),
                     "cancel": rng.random() < 1 / 3, "dst_host": d.host, "repo": repo, "tag": tag,
                     "dst_repo": dst_repo})
    spec = {"jobs": jobs, "in_flight": in_flight, "workers": workers, "image_workers": image_workers,
            "close_after": 5, "baseline_after": 20, "seed": 3}
    path = os.path.join(ctx.tmp("soak"), "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    r = ctx.fl("run", SOAK_LUA, path, timeout=1500)
    check(r.status == 0, "the soak script failed: %r", r)
    out = json.loads(r.out.strip().splitlines()[-1])
    ctx.log("soak: %s", json.dumps({k: v for k, v in out.items() if k != "results"}))
    by_host = {d.host: d for d in dsts}
    completed = cancelled = 0
    failures = []
    for job, res in zip(jobs, out["results"]):
        if res["ok"]:
            completed += 1
            verify.same_image(ctx, src, job["repo"], job["tag"], by_host[job["dst_host"]], job["dst_repo"],
                              job["tag"], pull=False)
        elif job["cancel"] and res["code"] == "CANCELLED":
            cancelled += 1
        else:
            failures.append((job["src"], job["dst"], res))
    check(not failures, "%d jobs not cancelled failed: %s", len(failures), failures[:5])
    check(cancelled >= copies // 6, "only %d of %d jobs were cancelled mid-way", cancelled, copies)
    check(out["max_in_flight"] >= min(in_flight, copies), "at most %d jobs were in flight", out["max_in_flight"])
    check(out["max_threads"] <= out["thread_cap"], "%d threads, over the cap %d", out["max_threads"],
          out["thread_cap"])
    sanitized = "FL_SANITIZE" in os.environ or out.get("sanitized")
    growth = out["rss_end_kb"] / out["rss_baseline_kb"] - 1
    if not sanitized:
        check(growth <= 0.10, "RSS grew %.1f%% after the first %d jobs (%d kB -> %d kB)", growth * 100,
              spec["baseline_after"], out["rss_baseline_kb"], out["rss_end_kb"])
    for d in dsts:
        verify.registry_consistent(ctx, d)
    ctx.note("soak: %d copies (%d completed and verified, %d cancelled mid-way), up to %d in flight, "
             "%d threads at most (cap %d), RSS %d kB after %d jobs, %d kB at the end (%+.1f%%), %.0f s",
             copies, completed, cancelled, out["max_in_flight"], out["max_threads"], out["thread_cap"],
             out["rss_baseline_kb"], spec["baseline_after"], out["rss_end_kb"], growth * 100, out["seconds"])


@scenario(suites=("quick",), weight=40, timeout=900)
def soak_quick(ctx):
    soak(ctx, copies=48, in_flight=20, destinations=2)


@scenario(suites=("full", "soak"), weight=300, timeout=1800)
def soak_long(ctx):
    soak(ctx, copies=int(os.environ.get("SOAK_COPIES", "240")), in_flight=24, destinations=3)


# ---------------------------------------------------------------------------
# the fault rate: 12% of requests on both sides fail
# ---------------------------------------------------------------------------
def rate_rules(rate):
    """Faults on every kind of request, each request faulted with probability
    `rate` in total (the rules are tried in order, so each takes its share of
    what the earlier ones left)."""
    kinds = [
        ({"method": "GET", "path": BLOB_GET}, ["close", "truncate", "status", "rate_limit", "drop", "flip",
                                               "stall"]),
        ({"method": ["GET", "HEAD"], "path": MANIFEST}, ["status", "rate_limit", "drop", "stall"]),
        ({"method": ["POST", "PUT", "PATCH"], "path": UPLOAD}, ["status", "rate_limit", "drop"]),
        ({"method": ["PUT"], "path": MANIFEST}, ["status", "rate_limit", "drop"]),
        ({"method": "HEAD", "path": r"^/v2/.+/blobs/"}, ["status", "drop"]),
        ({"method": "*", "path": r"^/v2/(?!.+/(blobs|manifests)/)"}, ["status", "drop"]),  # /v2/, listings
    ]
    rules = []
    for match, actions in kinds:
        left = 1.0
        for i, a in enumerate(actions):
            share = rate / len(actions)
            r = dict(match)
            r.update({"name": "%s-%s" % (match["path"][:12], a), "action": a,
                      "probability": round(min(1.0, share / left), 4)})
            left -= share
            if a == "status":
                r["status"] = 503
            if a == "stall":
                r["seconds"] = 1.0
            if a == "rate_limit":
                r["retry_after"] = 1
            rules.append(r)
    return rules


FAULT_IMAGES = [("project-a/app", "v1.0"), ("project-a/web", "v1.1"), ("project-b/tool", "v2.0"),
                ("project-a/app", "v2.0"), ("project-b/tool", "v1.0")]


def fault_rate_runs(ctx, runs, rate=0.12):
    src, _ = ctx.shared("small")
    complete, failed_images, summary = 0, 0, []
    all_faults = all_requests = 0
    for run in range(runs):
        dst = ctx.registry()
        sp = ctx.faultproxy(src, rate_rules(rate), seed=500 + run)
        dp = ctx.faultproxy(dst, rate_rules(rate), seed=900 + run)
        jobs = [{"src": "%s/%s:%s" % (sp.host, r, t), "dst": "%s/%s:%s" % (dp.host, r, t)} for r, t in FAULT_IMAGES]
        r, results, counters = ctx.copy(jobs, concurrency=3, timeout=600)
        check(r.status in (0, 1), "run %d: exit %s (crash?): %r", run, r.status, r)
        ok = 0
        for j, (repo, tag) in zip(jobs, FAULT_IMAGES):
            res = results.get(j["src"] + " -> " + j["dst"])
            check(res is not None, "run %d: no outcome for %s", run, j["src"])
            if res["ok"]:
                ok += 1
                verify.same_image(ctx, src, repo, tag, dst, repo, tag, pull=False)
            else:
                check(res.get("code") and res.get("error"), "run %d: a failure without a name: %s", run, res)
                summary.append("run %d: %s %s" % (run, res["code"], res["error"][:200]))
        verify.registry_consistent(ctx, dst)
        faults = len(sp.faults()) + len(dp.faults())
        requests = len(sp.requests()) + len(dp.requests())
        all_faults, all_requests = all_faults + faults, all_requests + requests
        complete += ok == len(jobs)
        failed_images += len(jobs) - ok
        ctx.log("run %d: %d/%d images, %d faults in %d requests (%.1f%%), retries %s", run, ok, len(jobs), faults,
                requests, 100.0 * faults / max(1, requests), (counters or {}).get("retries"))
        sp.stop()
        dp.stop()
        ctx.stop(dst)
    rate_ok = complete / runs
    ctx.note("fault rate %.0f%% (measured: %d faults in %d requests, %.1f%%): %d of %d multi-repository runs "
             "complete (%.0f%%), %d images failed (named)%s",
             rate * 100, all_faults, all_requests, 100.0 * all_faults / max(1, all_requests), complete, runs,
             rate_ok * 100, failed_images,
             (": " + "; ".join(summary[:5])) if summary else "")
    return rate_ok


@scenario(suites=("full",), weight=200, timeout=1800)
def fault_rate_12_percent(ctx):
    runs = 5
    rate_ok = fault_rate_runs(ctx, runs)
    check(rate_ok >= 0.8, "only %.0f%% of runs completed at a 12%% fault rate", rate_ok * 100)


@scenario(suites=("fault-rate",), weight=900, timeout=5400)
def fault_rate_12_percent_20_runs(ctx):
    runs = int(os.environ.get("FAULT_RATE_RUNS", "20"))
    rate_ok = fault_rate_runs(ctx, runs)
    check(rate_ok >= 0.9, "only %.0f%% of %d runs completed at a 12%% fault rate", rate_ok * 100, runs)


# ---------------------------------------------------------------------------
# credentials rotated mid-run
# ---------------------------------------------------------------------------
HELPER = """#!/bin/sh
# docker-credential-e2erot: answers with the secret in %(secret)s, logs calls
read host
echo "$1 $host" >> %(calls)s
printf '{"ServerURL":"%%s","Username":"%(user)s","Secret":"%%s"}\\n' "$host" "$(cat %(secret)s)"
"""


@scenario(weight=20, timeout=600)
def credentials_rotated_mid_run(ctx):
    """A registry behind the token issuer starts refusing the first password
    mid-run, and the credential helper's answer changes at the same moment:
    the run completes, and the helper is asked again only when refused."""
    src, images = ctx.shared("fleet")
    reg = ctx.registry("token", token_ttl=2)
    d = ctx.tmp("helper")
    secret, calls = os.path.join(d, "secret"), os.path.join(d, "calls")
    with open(secret, "w") as f:
        f.write(reg.password)
    helper = os.path.join(d, "docker-credential-e2erot")
    with open(helper, "w") as f:
        f.write(HELPER % {"secret": secret, "calls": calls, "user": reg.username})
    os.chmod(helper, 0o755)
    sp = ctx.faultproxy(src, [{"name": "slow", "method": "GET", "path": BLOB_GET, "action": "stall",
                               "seconds": 0.3}])
    chosen = [i for i in images if i["repository"].startswith("fleet/repo-")][:12]
    jobs = [{"src": "%s/%s:%s" % (sp.host, i["repository"], i["tag"]),
             "dst": "%s/%s:%s" % (reg.host, i["repository"], i["tag"])} for i in chosen]

    rotated = {}

    def rotate():
        # once a few images are there (tokens issued with the old password)
        end = time.time() + 120
        while time.time() < end and sum(1 for i in chosen if reg.head_manifest(i["repository"], i["tag"]) == 200) < 3:
            time.sleep(0.2)
        new = "rotated-" + reg.password
        for path in (secret, os.path.join(reg.dir, "rotated-password")):
            with open(path + ".tmp", "w") as f:
                f.write(new)
        os.rename(secret + ".tmp", secret)
        os.rename(os.path.join(reg.dir, "rotated-password.tmp"), os.path.join(reg.dir, "rotated-password"))
        rotated["at"] = time.time()
        rotated["password"] = new
        ctx.log("rotated the password")
    th = threading.Thread(target=rotate)
    th.start()
    try:
        env = {"PATH": d + ":" + os.environ.get("PATH", "")}
        r, results, _ = ctx.copy(jobs, registries={sp.host: {"insecure": True},
                                                   reg.host: {"credential_helper": "e2erot", "insecure": True}},
                                 env=env, concurrency=2, timeout=500)
    finally:
        th.join()
    check("at" in rotated, "the password was never rotated")
    failed = [k for k, v in results.items() if not v.get("ok")]
    check(r.status == 0 and not failed, "copies failed after the rotation: %s %r", failed, r)
    with open(calls) as f:
        n_calls = sum(1 for line in f if line.startswith("get"))
    with open(os.path.join(reg.dir, "token.log")) as f:
        tokens = sum(1 for line in f if "GET /token" in line or "POST /token" in line)
    check(n_calls >= 2, "the helper was never asked again after the rotation (%d calls)", n_calls)
    check(n_calls <= 4, "the helper was called %d times for %d token requests: once per request?", n_calls, tokens)
    reg.password, reg._client = rotated["password"], None  # the judge logs in anew
    verify.same_images(ctx, [(src, i["repository"], i["tag"], reg, i["repository"], i["tag"]) for i in chosen],
                       pull=False)
    ctx.note("password rotated mid-run: %d images copied, helper called %d times, %d token requests",
             len(chosen), n_calls, tokens)


# ---------------------------------------------------------------------------
# bounded waits: Retry-After cap, request deadline
# ---------------------------------------------------------------------------
def one_copy(ctx, src_host, dst_host, registries=None):
    job = {"src": "%s/project-a/app:v1.0" % src_host, "dst": "%s/bounded/app:v1.0" % dst_host}
    r, results, _ = ctx.copy([job], registries=registries, timeout=120)
    res = results.get(job["src"] + " -> " + job["dst"])
    check(res is not None, "no outcome: %r", r)
    return r, res


@scenario(weight=10, timeout=240)
def request_deadline_and_retry_after_cap(ctx):
    """A registry asking to wait 120 s (Retry-After) fails the request at
    once as RATE_LIMITED, naming the time asked for and retry_after_max; a
    manifest that never comes fails as TIMEOUT within request_timeout,
    naming the limit."""
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    sp = ctx.faultproxy(src, [{"method": "GET", "path": MANIFEST, "action": "rate_limit", "retry_after": 120}])
    r, res = one_copy(ctx, sp.host, dst.host)
    check(not res["ok"] and res["code"] == "RATE_LIMITED", "a 120 s Retry-After gave %s", res)
    check("120 s" in res["error"] and "retry_after_max (60 s)" in res["error"],
          "the error does not name the wait and the limit: %s", res["error"])
    check(r.seconds < 15, "a 120 s Retry-After held the copy %.1f s", r.seconds)
    ctx.stop(sp)
    # a configured cap above the ask: honoured (one 429 with 2 s, then fine)
    sp = ctx.faultproxy(src, [{"method": "GET", "path": MANIFEST, "action": "rate_limit", "retry_after": 2,
                               "max": 1}])
    r, res = one_copy(ctx, sp.host, dst.host, {sp.host: {"retry_after_max": 5}})
    check(res["ok"], "a 2 s Retry-After under a 5 s cap failed: %s", res)
    check(r.seconds >= 2, "the 2 s Retry-After was not waited for (%.1f s)", r.seconds)
    ctx.stop(sp)
    # a 429 with Retry-After: 2 on a blob upload (a streamed PUT): waited for
    sp = ctx.faultproxy(src, [])
    dp = ctx.faultproxy(dst, [{"method": "PUT", "path": UPLOAD, "action": "rate_limit", "retry_after": 2,
                               "max": 1}])
    t = time.time()
    job = {"src": "%s/project-b/tool:v1.1" % sp.host, "dst": "%s/bounded/tool:v1.1" % dp.host}
    r, results, _ = ctx.copy([job], timeout=120)
    took = time.time() - t
    res = results.get(job["src"] + " -> " + job["dst"])
    check(res and res["ok"], "a 429 on an upload failed the copy: %s", res)
    check(dp.faults(), "the upload 429 never fired")
    check(took >= 2, "the upload's Retry-After of 2 s was not waited for (%.1f s)", took)
    ctx.stop(sp)
    ctx.stop(dp)
    # the manifest stalls a minute: per try 2 s, the whole request 5 s
    sp = ctx.faultproxy(src, [{"method": ["GET", "HEAD"], "path": MANIFEST, "action": "stall", "seconds": 60}])
    t = time.time()
    r, res = one_copy(ctx, sp.host, dst.host, {sp.host: {"attempt_timeout": 2, "request_timeout": 5}})
    took = time.time() - t
    check(not res["ok"] and res["code"] == "TIMEOUT", "a stalled manifest gave %s", res)
    check("request_timeout (5 s)" in res["error"] or "attempt_timeout (2 s)" in res["error"],
          "the error does not name the limit: %s", res["error"])
    check(took < 20, "a 5 s request deadline took %.1f s", took)
    ctx.note("Retry-After 120 s: RATE_LIMITED at once; stalled manifest: TIMEOUT after %.1f s (%s)", took,
             res["error"][:160])


BASIC_ROTATION = r'''
local src, dst, ready, go = arg[1], arg[2], arg[3], arg[4]
local function copy(repo, tag)
  local r, m, c = fl.copy(src .. "/" .. repo .. ":" .. tag, dst .. "/" .. repo .. ":" .. tag)
  return { ok = r ~= nil, code = c, error = m }
end
local out = { before = copy("project-a/app", "v1.0") }
io.open(ready, "w"):close()
local waited = 0
while not io.open(go) and waited < 60 do fl.sleep(0.1); waited = waited + 0.1 end
-- the same registry object (its Basic header cached) after the rotation
out.after = { copy("project-a/web", "v1.1"), copy("project-b/tool", "v2.0") }
print(fl.json.encode(out))
'''


@scenario(weight=15, timeout=300)
def basic_credentials_rotated_mid_run(ctx):
    """An htpasswd registry restarted with a new password between two copies
    of one run, the credential helper's answer changed at the same moment:
    the Basic credentials are obtained again once, and the run completes."""
    src, _ = ctx.shared("small")
    reg = ctx.registry("htpasswd")
    d = ctx.tmp("helper")
    secret, calls = os.path.join(d, "secret"), os.path.join(d, "calls")
    with open(secret, "w") as f:
        f.write(reg.password)
    with open(os.path.join(d, "docker-credential-e2erot"), "w") as f:
        f.write(HELPER % {"secret": secret, "calls": calls, "user": reg.username})
    os.chmod(os.path.join(d, "docker-credential-e2erot"), 0o755)
    ready, go = os.path.join(d, "ready"), os.path.join(d, "go")
    script = os.path.join(d, "rotate.lua")
    with open(script, "w") as f:
        f.write("fl.registry_options(%s, { credential_helper = 'e2erot', insecure = true })\n"
                % json.dumps(reg.host) + BASIC_ROTATION)
    out_path = os.path.join(d, "out.json")
    p = ctx.spawn([e2e.BIN, "run", script, src.host, reg.host, ready, go],
                  env={"PATH": d + ":" + os.environ.get("PATH", "")}, stdout=open(out_path, "w"),
                  stderr=open(out_path + ".err", "w"))
    end = time.time() + 60
    while not os.path.exists(ready) and time.time() < end and p.poll() is None:
        time.sleep(0.05)
    check(os.path.exists(ready), "the first copy never finished: %s", open(out_path + ".err").read()[-2000:])
    # rotate: the registry restarts (same port, same data) with a new password
    new = "rotated-" + reg.password
    e2e.harness_registry._kill([reg.pid], reg.dir)
    line = subprocess.run(["htpasswd", "-Bbn", reg.username, new], check=True, capture_output=True,
                          text=True).stdout.strip()
    with open(os.path.join(reg.dir, "htpasswd"), "w") as f:
        f.write(line + "\n")
    with open(secret, "w") as f:
        f.write(new)
    ctx.spawn(["docker-registry", "serve", os.path.join(reg.dir, "config.yml")],
              stderr=open(os.path.join(reg.dir, "restart.log"), "w"))
    end = time.time() + 20
    status = None
    while time.time() < end and status != 401:
        try:
            reg._client = None
            status = reg.request("GET", "/v2/")[0].status
        except OSError:
            time.sleep(0.1)
    check(status == 401, "the restarted registry does not answer: %s", status)
    open(go, "w").close()
    p.wait(timeout=120)
    check(p.returncode == 0, "the run failed: exit %s: %s", p.returncode, open(out_path + ".err").read()[-2000:])
    out = json.loads(open(out_path).read().strip().splitlines()[-1])
    check(out["before"]["ok"], "the copy before the rotation failed: %s", out["before"])
    for r in out["after"]:
        check(r["ok"], "a copy after the rotation failed: %s", r)
    with open(calls) as f:
        n_calls = sum(1 for line in f if line.startswith("get"))
    check(n_calls == 2, "the helper was called %d times (want 2: at the start, after the refusal)", n_calls)
    err = open(out_path + ".err").read()
    check("obtained them again (they changed)" in err, "no refresh was logged: %s", err[-2000:])
    reg.password, reg._client = new, None
    verify.same_image(ctx, src, "project-b/tool", "v2.0", reg, "project-b/tool", "v2.0", pull=False)
    ctx.note("Basic credentials rotated with a registry restart: helper called %d times", n_calls)
