#!/usr/bin/env python3
"""freightliner serve: the real binary on loopback, driven with curl (HTTP/1.1
as a user's scripts speak it) and raw sockets: every endpoint and error
status, API keys (brute force locked out, rotation on SIGHUP), limits
(oversize body, slow headers), CORS, the job lifecycle (scheduled first run,
ad-hoc jobs, cancellation, kill -9 and restart, SIGTERM), the metrics
(promtool, and a real Prometheus scraping them)."""
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

KEY = "e2e-serve-key-0123456789"
KEY2 = "e2e-serve-key-rotated-abcdef"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'",
    "cache-control": "no-store",
}


def config_yaml(src, dst, entries):
    lines = ["version: 1", "registries:",
             "  src: { host: \"%s\", insecure: true }" % src,
             "  dst: { host: \"%s\", insecure: true }" % dst, "sync:"]
    for e in entries:
        lines.append("  - name: %s" % e["name"])
        lines.append("    source: { registry: src, %s }" % e["source"])
        lines.append("    destination: { registry: dst, prefix: %s }" % e.get("prefix", e["name"]))
        for k in ("interval", "schedule"):
            if k in e:
                lines.append("    %s: \"%s\"" % (k, e[k]))
    return "\n".join(lines) + "\n"


class Server:
    """One `freightliner serve` process (restartable on the same state)."""

    def __init__(self, ctx, src, dst, entries, extra=(), keys=(KEY,), env=None):
        self.ctx = ctx
        self.dir = ctx.tmp("serve")
        self.config = os.path.join(self.dir, "sync.yaml")
        self.keys = os.path.join(self.dir, "keys")
        self.state = os.path.join(self.dir, "state")
        self.extra, self.env = list(extra), env or {}
        self.write_config(src, dst, entries)
        self.write_keys(keys)
        self.proc = None
        self.starts = 0

    def write_config(self, src, dst, entries):
        with open(self.config + ".tmp", "w") as f:
            f.write(config_yaml(src, dst, entries))
        os.replace(self.config + ".tmp", self.config)

    def write_keys(self, keys):
        with open(self.keys + ".tmp", "w") as f:
            f.write("# API keys\n" + "".join(k + "\n" for k in keys))
        os.replace(self.keys + ".tmp", self.keys)

    def start(self):
        self.starts += 1
        out = os.path.join(self.dir, "stdout-%d.log" % self.starts)
        self.err_path = os.path.join(self.dir, "stderr-%d.log" % self.starts)
        argv = [e2e.BIN, "serve", "--config", self.config, "--listen", "127.0.0.1:0",
                "--state-dir", self.state, "--api-key-file", self.keys] + self.extra
        self.proc = self.ctx.spawn(argv, env=self.env, stdout=open(out, "w"),
                                   stderr=open(self.err_path, "w"))
        deadline = time.time() + 20
        while True:
            text = open(out).read()
            if "listening on" in text:
                break
            if self.proc.poll() is not None or time.time() > deadline:
                raise e2e.Failure("serve did not start (exit %s): %s" %
                                  (self.proc.poll(), open(self.err_path).read()[-2000:]))
            time.sleep(0.05)
        self.port = int(text.split("listening on ")[1].split(":")[2].split()[0].rstrip(";"))
        self.metrics_port = int(text.split("metrics on port ")[1]) if "metrics on port" in text else None
        self.scheme = "https" if "https://" in text else "http"
        self.url = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self.ctx.log("serve %d on %s", self.proc.pid, self.url)
        return self

    def stderr(self):
        return open(self.err_path).read()

    def curl(self, method, path, body=None, key=KEY, headers=(), port=None, curl_args=()):
        """(status, headers dict (lower-case names), body text) with curl."""
        url = "%s://127.0.0.1:%d%s" % (self.scheme, port or self.port, path)
        argv = ["curl", "-sS", "-i", "-X", method, "--max-time", "20"] + list(curl_args)
        if key:
            argv += ["-H", "Authorization: Bearer " + key]
        for h in headers:
            argv += ["-H", h]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary",
                     body if isinstance(body, str) else json.dumps(body)]
        p = subprocess.run(argv + [url], capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, "curl %s %s failed: %s", method, path, p.stderr)
        head, _, text = p.stdout.replace("\r\n", "\n").partition("\n\n")
        while head.startswith("HTTP/1.1 100"):
            head, _, text = text.partition("\n\n")
        lines = head.split("\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs, text

    def api(self, method, path, body=None, want=200, **kw):
        status, hdrs, text = self.curl(method, path, body, **kw)
        check(status == want, "%s %s: HTTP %s, want %s: %s", method, path, status, want, text[:500])
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def wait_job(self, job_id, states=("succeeded", "failed", "cancelled", "invalid"), timeout=60):
        deadline = time.time() + timeout
        while True:
            doc = self.api("GET", "/api/v1/jobs/" + job_id)
            if doc["state"] in states:
                return doc
            check(time.time() < deadline, "job %s still %s after %ss: %s", job_id, doc["state"],
                  timeout, doc)
            time.sleep(0.2)

    def jobs(self):
        return self.api("GET", "/api/v1/jobs?limit=500")["jobs"]

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=10):
        t = time.time()
        self.signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise e2e.Failure("serve did not exit within %ss of SIGTERM" % timeout)
        return status, time.time() - t

    def audit(self):
        path = os.path.join(self.state, "audit.log")
        with open(path) as f:
            return [json.loads(line) for line in f]


def metric(text, name, labels=""):
    """The value of a series in an exposition (0 when absent)."""
    prefix = name + ("{" + labels + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    return 0.0


def headers_ok(hdrs, what):
    for k, v in SECURITY_HEADERS.items():
        check(hdrs.get(k) == v, "%s: header %s is %r, want %r", what, k, hdrs.get(k), v)
    check(hdrs.get("x-request-id"), "%s: no X-Request-Id", what)


def seeded_tags(images, repo):
    return sorted(i["tag"] for i in images if i["repository"] == repo)


@scenario(weight=12)
def serve_api_jobs_and_metrics(ctx):
    """The first scheduled run copies what is missing; every endpoint; every
    error status; an ad-hoc job; promtool accepts the exposition."""
    src, images = ctx.shared("small")
    dst = ctx.registry()
    s = Server(ctx, src.host, dst.host, [
        {"name": "app", "source": "repository: project-a/app", "interval": "1h"},
        {"name": "tool", "source": "repository: project-b/tool"},
    ]).start()
    # health needs no key; /api/ does
    status, hdrs, body = s.curl("GET", "/healthz", key=None)
    check(status == 200 and json.loads(body)["status"] == "ok", "healthz: %s %s", status, body)
    headers_ok(hdrs, "/healthz")
    s.api("GET", "/readyz", key=None)
    # the scheduled entry's first run copies the repository
    deadline = time.time() + 60
    while True:
        jobs = [j for j in s.jobs() if j.get("sync") == "app"]
        if jobs and jobs[0]["state"] in ("succeeded", "failed"):
            break
        check(time.time() < deadline, "no finished scheduled run of 'app': %s", jobs)
        time.sleep(0.3)
    first = s.api("GET", "/api/v1/jobs/" + jobs[0]["id"])
    check(first["state"] == "succeeded" and first["trigger"] == "schedule", "first run: %s", first)
    want = seeded_tags(images, "project-a/app")
    check(dst.tags("app/project-a/app") == want, "destination tags %s, want %s",
          dst.tags("app/project-a/app"), want)
    check(first["counters"]["images_replicated"] == len(want), "counters: %s", first["counters"])
    verify.same_image(ctx, src, "project-a/app", want[0], dst, "app/project-a/app", want[0])
    # the unscheduled entry does not run by itself; the API runs it
    syncs = s.api("GET", "/api/v1/syncs")["syncs"]
    check(sorted(x["name"] for x in syncs) == ["app", "tool"], "syncs: %s", syncs)
    check(dst.tags("tool/project-b/tool") in ([], None), "tool ran without being asked")
    r = s.api("POST", "/api/v1/sync/tool/run", want=202)
    check(s.wait_job(r["id"])["state"] == "succeeded", "sync run failed")
    check(dst.tags("tool/project-b/tool") == seeded_tags(images, "project-b/tool"), "tool not copied")
    # an ad-hoc job with a sync entry's fields
    status, hdrs, body = s.curl("POST", "/api/v1/jobs", {
        "source": {"registry": "src", "repository": "project-a/app"},
        "destination": {"registry": "dst", "prefix": "adhoc"}, "tags": {"include": ["v1.0"]}})
    check(status == 202 and hdrs.get("location", "").startswith("/api/v1/jobs/"), "POST: %s %s", status, body)
    doc = s.wait_job(json.loads(body)["id"])
    check(doc["state"] == "succeeded" and dst.tags("adhoc/project-a/app") == ["v1.0"],
          "ad-hoc job: %s, tags %s", doc, dst.tags("adhoc/project-a/app"))
    # a request the schema refuses: the job is invalid, with the schema's words
    r = s.api("POST", "/api/v1/jobs", {"source": {"registry": "nope", "repository": "x"},
                                        "destination": {"registry": "dst"}}, want=202)
    doc = s.wait_job(r["id"])
    check(doc["state"] == "invalid" and "unknown registry 'nope'" in doc["message"], "invalid: %s", doc)
    # error statuses, each with a JSON body naming the request id
    cases = [
        ("POST", "/api/v1/jobs", '{"source": ', 400, "malformed JSON"),
        ("POST", "/api/v1/jobs", [1, 2], 400, "JSON object"),
        ("POST", "/api/v1/jobs", {"source": {"registry": "src"}, "bogus": 1}, 400, "unknown field 'bogus'"),
        ("POST", "/api/v1/jobs", {"sync": "app", "source": {}}, 400, "not both"),
        ("POST", "/api/v1/jobs", {"sync": "nope"}, 404, "no sync entry"),
        ("POST", "/api/v1/sync/nope/run", None, 404, "no sync entry"),
        ("GET", "/api/v1/jobs/does-not-exist", None, 404, "no job"),
        ("GET", "/api/v1/jobs/..%2f..%2fetc", None, 404, "not found"),
        ("DELETE", "/api/v1/jobs/does-not-exist", None, 404, "no job"),
        ("DELETE", "/api/v1/jobs/" + first["id"], None, 409, "finished"),
        ("PUT", "/api/v1/jobs", None, 405, "method not allowed"),
        ("GET", "/api/v1/nothing", None, 404, "not found"),
        ("GET", "/api/v1/jobs?limit=0", None, 400, "limit"),
        ("GET", "/" + "x" * 3000, None, 414, "too long"),
    ]
    for method, path, body, want_status, words in cases:
        b = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        status, hdrs, text = s.curl(method, path, b)
        check(status == want_status, "%s %s: HTTP %s, want %s: %s", method, path, status, want_status, text)
        headers_ok(hdrs, "%s %s" % (method, path))
        doc = json.loads(text)
        check(words in doc["error"] and doc["request_id"] == hdrs["x-request-id"],
              "%s %s: body %s (want %r and the request id)", method, path, text, words)
        check("/" not in doc["error"] or "JSON" in doc["error"], "a path in an error body: %s", text)
    status, hdrs, _ = s.curl("PUT", "/api/v1/jobs")
    check(hdrs.get("allow") == "GET, POST", "405 Allow: %s", hdrs.get("allow"))
    # paging
    page = s.api("GET", "/api/v1/jobs?limit=1&offset=1")
    check(len(page["jobs"]) == 1 and page["total"] >= 4 and page["next_offset"] == 2, "paging: %s", page)
    # metrics: real values, and promtool's approval
    status, hdrs, text = s.curl("GET", "/metrics", key=None)
    check(status == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4"), "metrics: %s", status)
    check(metric(text, "freightliner_images_replicated_total", 'sync="app"') == len(want),
          "images_replicated{app}: %s", metric(text, "freightliner_images_replicated_total", 'sync="app"'))
    check(metric(text, "freightliner_runs_total", 'sync="ad-hoc",outcome="succeeded"') == 1, "ad-hoc runs")
    check(metric(text, "freightliner_bytes_total", 'sync="app"') > 0, "no bytes counted")
    check(metric(text, "freightliner_run_duration_seconds_count", 'sync="app"') == 1, "duration histogram")
    check('freightliner_build_info{version="' in text, "no build info")
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    check(p.returncode == 0, "promtool check metrics: %s %s", p.stdout, p.stderr)
    status, took = s.stop()
    check(status == 0 and took < 10, "SIGTERM: exit %s after %.1fs", status, took)


@scenario(weight=8)
def serve_auth_lockout_and_cors(ctx):
    """Wrong keys get the same bare 401; the sixth failure in a row locks
    the address out (429 with Retry-After, even for a right key) until the
    lockout ends; the audit log has each failure; CORS is refused unless
    the origin is listed."""
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    env_key = "e2e-env-key-from-the-environment"
    s = Server(ctx, src.host, dst.host, [{"name": "app", "source": "repository: project-a/app"}],
               extra=["--cors-origin", "https://ui.example"],
               env={"FREIGHTLINER_API_KEYS": "e2e-env-key-other-000000, " + env_key}).start()
    s.api("GET", "/api/v1/jobs")
    s.api("GET", "/api/v1/jobs", key=env_key)  # FREIGHTLINER_API_KEYS adds to the file's keys
    bodies = set()
    for key in (None, "wrong-key-xxxxxxxxxxxx", KEY + "x", KEY[:-1]):
        status, hdrs, text = s.curl("GET", "/api/v1/jobs", key=key)
        check(status == 401 and hdrs.get("www-authenticate", "").startswith("Bearer"), "key %r: %s", key, status)
        bodies.add(json.loads(text)["error"])
    check(bodies == {"unauthorized"}, "401 bodies differ: %s", bodies)
    status, _, _ = s.curl("GET", "/api/v1/jobs", key="wrong-key-yyyyyyyyyy")  # the fifth: locks 1 s
    check(status == 401, "fifth failure: %s", status)
    status, hdrs, text = s.curl("GET", "/api/v1/jobs", key=KEY)
    check(status == 429 and int(hdrs.get("retry-after", "0")) >= 1, "locked out, right key: %s %s", status, hdrs)
    check(json.loads(text)["error"] == "too many requests", "429 body: %s", text)
    time.sleep(1.2)
    for _ in range(3):  # each failure now doubles the lockout
        status, _, _ = s.curl("GET", "/api/v1/jobs", key="wrong-key-zzzzzzzzzzz")
        if status == 429:
            break
        check(status == 401, "failure after lockout: %s", status)
    status, hdrs, _ = s.curl("GET", "/api/v1/jobs", key=KEY)
    check(status == 429 and int(hdrs["retry-after"]) >= 2, "second lockout: %s %s", status, hdrs)
    # /healthz and /metrics stay open to the locked-out address
    check(s.curl("GET", "/healthz", key=None)[0] == 200, "healthz refused during lockout")
    time.sleep(int(hdrs["retry-after"]) + 0.3)
    s.api("GET", "/api/v1/jobs")  # a success forgets the failures
    text = s.curl("GET", "/metrics", key=None)[2]
    check(metric(text, "freightliner_auth_failures_total") >= 6, "auth failures metric: %s",
          metric(text, "freightliner_auth_failures_total"))
    fails = [a for a in s.audit() if a["event"] == "auth_failure"]
    check(len(fails) >= 6 and all(a["client"] == "127.0.0.1" and a["request_id"] for a in fails),
          "audit auth failures: %s", fails[:3])
    check(any(a["event"] == "auth_lockout" for a in s.audit()), "no lockout in the audit log")
    audit_text = open(os.path.join(s.state, "audit.log")).read()
    check(KEY not in audit_text and "wrong-key" not in audit_text, "a key in the audit log")
    # CORS: a listed origin's preflight is allowed, any other refused
    status, hdrs, _ = s.curl("OPTIONS", "/api/v1/jobs", key=None, headers=[
        "Origin: https://ui.example", "Access-Control-Request-Method: POST"])
    check(status == 204 and hdrs.get("access-control-allow-origin") == "https://ui.example"
          and "POST" in hdrs.get("access-control-allow-methods", ""), "allowed preflight: %s %s", status, hdrs)
    status, hdrs, _ = s.curl("OPTIONS", "/api/v1/jobs", key=None, headers=[
        "Origin: https://evil.example", "Access-Control-Request-Method: POST"])
    check(status == 403 and "access-control-allow-origin" not in hdrs, "refused preflight: %s %s", status, hdrs)
    status, hdrs, _ = s.curl("GET", "/api/v1/jobs", headers=["Origin: https://evil.example"])
    check(status == 403, "GET from another origin: %s", status)
    status, hdrs, _ = s.curl("GET", "/api/v1/jobs", headers=["Origin: https://ui.example"])
    check(status == 200 and hdrs.get("access-control-allow-origin") == "https://ui.example", "allowed GET")
    check(s.stop()[0] == 0, "exit status")


def raw_request(port, data, timeout=10.0):
    """Send bytes, read until the server closes; (reply bytes, seconds)."""
    t = time.time()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            reply += chunk
    return reply, time.time() - t


@scenario(weight=8)
def serve_limits(ctx):
    """Oversize bodies get 413 (announced or chunked); headers that trickle
    in are cut off by the connection timeout; a silent connection too; the
    server answers normally throughout."""
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    s = Server(ctx, src.host, dst.host, [{"name": "app", "source": "repository: project-a/app"}],
               extra=["--timeout", "2", "--max-body", "1024"]).start()
    big = json.dumps({"source": {"registry": "src", "repository": ["r%d" % i for i in range(200)]},
                      "destination": {"registry": "dst"}})
    status, hdrs, text = s.curl("POST", "/api/v1/jobs", big)
    check(status == 413 and "too large" in json.loads(text)["error"], "announced oversize: %s %s", status, text)
    status, _, text = s.curl("POST", "/api/v1/jobs", big, headers=["Transfer-Encoding: chunked"])
    check(status == 413, "chunked oversize: %s %s", status, text)
    check(s.jobs() == [], "an oversize request made a job")
    # slowloris: a header line every 0.5 s never completes the request
    t = time.time()
    closed_after = None
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for i in range(40):
            try:
                sock.sendall(b"X-Slow-%d: y\r\n" % i)
                sock.settimeout(0.5)
                if sock.recv(1024) == b"":
                    closed_after = time.time() - t
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.time() - t
                break
    check(closed_after is not None and 1.5 <= closed_after < 5,
          "slow headers cut off after %s s (want the 2 s timeout)", closed_after)
    # a connection that sends half a request line and goes silent
    reply, took = raw_request(s.port, b"GET /hea")
    check(took < 5, "a silent connection stayed open %.1fs", took)
    # huge headers are refused by the header memory limit
    reply, _ = raw_request(s.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    check(reply.startswith(b"HTTP/1.1 4"), "huge header: %r", reply[:80])
    s.api("GET", "/healthz", key=None)
    check(s.stop()[0] == 0, "exit status")
    # a connection limit: past it, connections are refused until one ends
    s.extra = ["--max-connections", "3", "--timeout", "5"]
    s.start()
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(3)]
    time.sleep(0.3)
    p = subprocess.run(["curl", "-sS", "--max-time", "3", s.url + "/healthz"], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode != 0, "a connection past the limit was served: %s", p.stdout)
    for c in held:
        c.close()
    time.sleep(0.3)
    s.api("GET", "/healthz", key=None)
    check(s.stop()[0] == 0, "exit status")


@scenario(weight=10)
def serve_sighup_rotation_and_reload(ctx):
    """SIGHUP swaps the API keys (the old one stops working at once) and the
    config (a new entry appears) without dropping a running job; a config
    with problems is refused and the old one kept; POST /api/v1/reload."""
    src, _ = ctx.shared("fleet")
    dst = ctx.registry()
    proxy = ctx.faultproxy(src, [{"method": "GET", "path": "/blobs/", "action": "stall", "seconds": 0.6}])
    entries = [{"name": "fleet", "source": "repository_pattern: \"*\""}]
    s = Server(ctx, proxy.host, dst.host, entries, extra=["--parallel", "2"]).start()
    job = s.api("POST", "/api/v1/jobs", {"sync": "fleet"}, want=202)["id"]
    s.wait_job(job, states=("running",))
    s.write_keys([KEY2])
    s.write_config(proxy.host, dst.host, entries + [{"name": "extra", "source": "repository: project-x"}])
    s.signal(signal.SIGHUP)
    deadline = time.time() + 10
    while s.curl("GET", "/api/v1/syncs", key=KEY)[0] != 401:
        check(time.time() < deadline, "the old key still works 10 s after SIGHUP")
        time.sleep(0.2)
    syncs = s.api("GET", "/api/v1/syncs", key=KEY2)["syncs"]
    check(sorted(x["name"] for x in syncs) == ["extra", "fleet"], "reloaded syncs: %s", syncs)
    doc = s.wait_job(job, timeout=120, states=("succeeded", "failed", "cancelled")) if False else None
    # the running job went on
    deadline = time.time() + 120
    while True:
        doc = s.api("GET", "/api/v1/jobs/" + job, key=KEY2)
        if doc["state"] not in ("queued", "running"):
            break
        check(time.time() < deadline, "job still running: %s", doc)
        time.sleep(0.3)
    check(doc["state"] == "succeeded" and doc["counters"]["images_failed"] == 0, "job after SIGHUP: %s", doc)
    # a broken config is refused, the running one kept
    with open(s.config, "a") as f:
        f.write("  - source: { registry: nowhere, repository: x }\n    destination: { registry: dst }\n")
    r = s.api("POST", "/api/v1/reload", key=KEY2, want=202)
    check(r["status"] == "reload requested", "reload: %s", r)
    deadline = time.time() + 10
    while not [a for a in s.audit() if a["event"] == "reload" and a["outcome"] == "failure"]:
        check(time.time() < deadline, "no failed reload in the audit log: %s", s.audit()[-3:])
        time.sleep(0.2)
    check(len(s.api("GET", "/api/v1/syncs", key=KEY2)["syncs"]) == 2, "a broken config replaced the good one")
    reloads = [a for a in s.audit() if a["event"] == "reload"]
    check(reloads[0]["how"] == "signal" and reloads[0]["outcome"] == "success", "audit: %s", reloads)
    check(reloads[-1]["how"] == "api" and reloads[-1]["client"] == "127.0.0.1" and reloads[-1]["request_id"],
          "audit of the API reload: %s", reloads[-1])
    creates = [a for a in s.audit() if a["event"] == "job_create"]
    check(creates and creates[0]["job"] == job, "audit job_create: %s", creates)
    check(s.stop()[0] == 0, "exit status")


@scenario(weight=14)
def serve_cancel_kill_restart_sigterm(ctx):
    """DELETE cancels a running job only; kill -9 in the middle of a job,
    start again: the job resumes from its checkpoint and finishes, finished
    jobs stay listed; SIGTERM mid-job exits 0 within 10 s and the job
    resumes at the next start."""
    src, images = ctx.shared("fleet")
    dst = ctx.registry()
    proxy = ctx.faultproxy(src, [{"method": "GET", "path": "/blobs/", "action": "stall", "seconds": 0.5}])
    s = Server(ctx, proxy.host, dst.host, [{"name": "fleet", "source": "repository_pattern: \"*\""}],
               extra=["--parallel", "2", "--max-queued", "1"]).start()
    # cancel: the job stops, the next one runs
    a = s.api("POST", "/api/v1/jobs", {"sync": "fleet"}, want=202)["id"]
    s.wait_job(a, states=("running",))
    b = s.api("POST", "/api/v1/jobs", {"source": {"registry": "src", "repository": "fleet/repo-00"},
                                       "destination": {"registry": "dst", "prefix": "b"}}, want=202)["id"]
    # one job waiting is the limit here: the next is shed with 503
    status, hdrs, text = s.curl("POST", "/api/v1/sync/fleet/run")
    check(status == 503 and hdrs.get("retry-after") == "5" and "queue is full" in text,
          "queue full: %s %s %s", status, hdrs, text)
    time.sleep(0.5)
    r = s.api("DELETE", "/api/v1/jobs/" + a, want=202)
    check(r["state"] == "cancelling", "DELETE: %s", r)
    doc = s.wait_job(a, timeout=30)
    check(doc["state"] == "cancelled", "cancelled job: %s", doc)
    check(doc["counters"]["images_replicated"] < len(images), "the cancelled job copied everything: %s", doc)
    doc_b = s.wait_job(b, timeout=60)
    check(doc_b["state"] == "succeeded", "the job after the cancelled one: %s", doc_b)
    s.api("DELETE", "/api/v1/jobs/" + a, want=409)
    cancels = [x for x in s.audit() if x["event"] == "job_cancel"]
    check(len(cancels) == 1 and cancels[0]["job"] == a and cancels[0]["client"] == "127.0.0.1",
          "audit job_cancel: %s", cancels)
    # kill -9 in the middle of a job
    c = s.api("POST", "/api/v1/sync/fleet/run", want=202)["id"]
    deadline = time.time() + 60
    while True:
        doc = s.api("GET", "/api/v1/jobs/" + c)
        if doc["state"] == "running" and doc.get("progress", {}).get("images_replicated", 0) + \
                doc.get("progress", {}).get("images_up_to_date", 0) >= 2:
            break
        check(doc["state"] in ("queued", "running") and time.time() < deadline, "job c: %s", doc)
        time.sleep(0.1)
    s.signal(signal.SIGKILL)
    s.proc.wait(10)
    s.start()
    doc = s.wait_job(c, timeout=120)
    check(doc["state"] == "succeeded" and doc.get("resumed"), "resumed job: %s", doc)
    ids = [j["id"] for j in s.jobs()]
    check(ids[:3] == [a, b, c] and s.api("GET", "/api/v1/jobs/" + a)["state"] == "cancelled",
          "jobs after the restart: %s", ids)
    for img in images:
        dst_repo = "fleet/" + img["repository"]
        check(img["tag"] in (dst.tags(dst_repo) or []), "missing after restart: %s:%s", dst_repo, img["tag"])
    verify.same_image(ctx, src, images[0]["repository"], images[0]["tag"], dst,
                      "fleet/" + images[0]["repository"], images[0]["tag"])
    # SIGTERM in the middle of a job: exit 0 within 10 s, resumed later
    d = s.api("POST", "/api/v1/jobs", {"source": {"registry": "src", "repository_pattern": "*"},
                                       "destination": {"registry": "dst", "prefix": "d"}}, want=202)["id"]
    s.wait_job(d, states=("running",))
    time.sleep(1.0)
    status, took = s.stop()
    check(status == 0 and took < 10, "SIGTERM mid-job: exit %s after %.1fs", status, took)
    with open(os.path.join(s.state, "jobs.json")) as f:
        saved = {j["id"]: j for j in json.load(f)["jobs"]}
    check(saved[d]["state"] == "interrupted", "saved state of the interrupted job: %s", saved[d]["state"])
    check(os.path.exists(os.path.join(s.state, "checkpoints", d + ".json")), "checkpoint not kept")
    s.start()
    check(s.wait_job(d, timeout=120)["state"] == "succeeded", "interrupted job after restart")
    check(s.stop()[0] == 0, "exit status")


@scenario(weight=10)
def serve_prometheus_scrape(ctx):
    """A real Prometheus scrapes /metrics on its own listener; after a run
    its query API reports freightliner_images_replicated_total."""
    ctx.require_command("serve")
    if not os.path.exists("/usr/bin/prometheus"):
        raise e2e.Skip("prometheus not installed")
    src, images = ctx.shared("small")
    dst = ctx.registry()
    s = Server(ctx, src.host, dst.host, [{"name": "app", "source": "repository: project-a/app",
                                          "interval": "1h"}],
               extra=["--metrics-listen", "127.0.0.1:0"]).start()
    check(s.metrics_port, "no metrics port announced")
    status, _, _ = s.curl("GET", "/metrics", key=None)
    check(status == 404, "/metrics on the API listener with --metrics-listen: %s", status)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        prom_port = sock.getsockname()[1]
    d = ctx.tmp("prometheus")
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global: { scrape_interval: 1s, scrape_timeout: 1s }\nscrape_configs:\n"
                "  - job_name: freightliner\n    static_configs: [ { targets: ['127.0.0.1:%d'] } ]\n"
                % s.metrics_port)
    ctx.spawn(["/usr/bin/prometheus", "--config.file", os.path.join(d, "prometheus.yml"),
               "--storage.tsdb.path", os.path.join(d, "data"),
               "--web.listen-address", "127.0.0.1:%d" % prom_port],
              stderr=open(os.path.join(d, "prometheus.log"), "w"))
    want = len([i for i in images if i["repository"] == "project-a/app"])
    deadline = time.time() + 60
    value = None
    while time.time() < deadline:
        try:
            url = "http://127.0.0.1:%d/api/v1/query?query=freightliner_images_replicated_total" % prom_port
            with urllib.request.urlopen(url, timeout=5) as r:
                res = json.load(r)["data"]["result"]
            for series in res:
                if series["metric"].get("sync") == "app":
                    value = float(series["value"][1])
            if value == want:
                break
        except OSError:
            pass
        time.sleep(0.5)
    check(value == want, "Prometheus reports %s images replicated, want %s", value, want)
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % prom_port, timeout=5) as r:
        targets = json.load(r)["data"]["activeTargets"]
    check(targets and targets[0]["health"] == "up", "scrape target: %s", targets)
    check(s.stop()[0] == 0, "exit status")


HOOK = """
return {
  job = function(request, info)
    local prefix = request.destination and request.destination.prefix
    if prefix == "forbidden" then return false, "that prefix is not for " .. info.trigger .. " jobs" end
    if prefix == "adjust" then request.tags = { include = { "v1.0" } } return request end
    if prefix == "boom" then error("the hook broke at /secret/path") end
  end,
}
"""


@scenario(weight=5)
def serve_job_hook(ctx):
    """The server's Lua job hook vetoes a job, adjusts another, and a hook
    that raises fails only its job (the log has the detail, the body not);
    a hook that does not load is a usage error."""
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    d = ctx.tmp("hook")
    hook = os.path.join(d, "hook.lua")
    with open(hook, "w") as f:
        f.write(HOOK)
    s = Server(ctx, src.host, dst.host, [{"name": "app", "source": "repository: project-a/app"}],
               extra=["--hook", hook]).start()

    def job(prefix):
        r = s.api("POST", "/api/v1/jobs", {"source": {"registry": "src", "repository": "project-a/app"},
                                            "destination": {"registry": "dst", "prefix": prefix}}, want=202)
        return s.wait_job(r["id"], states=("succeeded", "failed", "refused", "invalid"))
    doc = job("forbidden")
    check(doc["state"] == "refused" and "not for api jobs" in doc["message"], "vetoed: %s", doc)
    check(dst.catalog() == [], "a vetoed job wrote: %s", dst.catalog())
    doc = job("adjust")
    check(doc["state"] == "succeeded" and doc.get("adjusted") and dst.tags("adjust/project-a/app") == ["v1.0"],
          "adjusted: %s, tags %s", doc, dst.tags("adjust/project-a/app"))
    doc = job("boom")
    check(doc["state"] == "failed" and "hook failed" in doc["message"] and "/secret" not in json.dumps(doc),
          "hook error: %s", doc)
    check("/secret/path" in s.stderr(), "the hook's error is not in the log")
    check(job("ok")["state"] == "succeeded", "a job after the hook error")
    check(s.stop()[0] == 0, "exit status")
    with open(hook, "w") as f:
        f.write("return 42\n")
    r = ctx.fl("serve", "--config", s.config, "--listen", "127.0.0.1:0", "--state-dir", s.state,
               "--hook", hook, timeout=30)
    check(r.status == 2 and "must return a table" in r.err, "bad hook: %r", r)


class Receiver:
    """A webhook receiver on loopback: records every POST; answers 500 to
    the first `fail_first` of them."""

    def __init__(self, fail_first=0):
        self.posts, self.lock = [], threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.posts.append({"headers": dict(self.headers), "body": body, "time": time.time()})
                    n = len(outer.posts)
                self.send_response(500 if n <= fail_first else 204)
                self.end_headers()

            def log_message(self, *args):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


@scenario(weight=8)
def serve_webhooks(ctx):
    """One signed webhook POST per run (not per image), retried with backoff
    when the receiver fails; the signature is the HMAC-SHA256 of the body."""
    src, images = ctx.shared("small")
    dst = ctx.registry()
    secret = "e2e-webhook-secret-42"
    d = ctx.tmp("webhook")
    with open(os.path.join(d, "secret"), "w") as f:
        f.write(secret + "\n")
    rx = Receiver(fail_first=2)
    try:
        s = Server(ctx, src.host, dst.host, [{"name": "app", "source": "repository: project-a/app"}],
                   extra=["--webhook", rx.url, "--webhook-secret-file", os.path.join(d, "secret")]).start()
        r = s.api("POST", "/api/v1/sync/app/run", want=202)
        doc = s.wait_job(r["id"])
        check(doc["state"] == "succeeded" and doc["counters"]["images_replicated"] > 1, "job: %s", doc)
        deadline = time.time() + 30
        while len(rx.posts) < 3:
            check(time.time() < deadline, "webhook posts: %d (want 2 failures, then a delivery)", len(rx.posts))
            time.sleep(0.2)
        time.sleep(1.0)
        check(len(rx.posts) == 3, "%d webhook posts for one run (want 3 attempts of one delivery)", len(rx.posts))
        bodies = {p["body"] for p in rx.posts}
        check(len(bodies) == 1, "the retries sent different bodies")
        post = rx.posts[-1]
        body = json.loads(post["body"])
        check(body["event"] == "run" and body["job"] == r["id"] and body["state"] == "succeeded"
              and body["counters"]["images_replicated"] == doc["counters"]["images_replicated"],
              "webhook body: %s", body)
        want = "sha256=" + hmac.new(secret.encode(), post["body"], hashlib.sha256).hexdigest()
        check(post["headers"].get("X-Freightliner-Signature") == want, "signature %s, want %s",
              post["headers"].get("X-Freightliner-Signature"), want)
        check(rx.posts[2]["time"] - rx.posts[0]["time"] < 10, "retries took %.1fs (backoff caps: 1 s, 2 s)",
              rx.posts[2]["time"] - rx.posts[0]["time"])
        text = s.curl("GET", "/metrics", key=None)[2]
        check(metric(text, "freightliner_webhook_deliveries_total", 'outcome="delivered"') == 1
              and metric(text, "freightliner_webhook_deliveries_total", 'outcome="retried"') == 2,
              "webhook metrics: %s", [x for x in text.splitlines() if "webhook" in x])
        check(s.stop()[0] == 0, "exit status")
        r = ctx.fl("serve", "--config", s.config, "--state-dir", s.state, "--webhook", "ftp://x/y", timeout=30)
        check(r.status == 2 and "http:// or https://" in r.err, "ftp webhook: %r", r)
    finally:
        rx.stop()


@scenario(weight=5)
def serve_readyz_registries(ctx):
    """/readyz turns 503 (naming the registry) when a configured registry
    stops answering, while /healthz stays 200."""
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    s = Server(ctx, src.host, dst.host, [{"name": "app", "source": "repository: project-a/app"}],
               extra=["--probe-interval", "1"]).start()
    deadline = time.time() + 10
    while s.curl("GET", "/readyz", key=None)[0] != 200:
        check(time.time() < deadline, "not ready with every registry up: %s", s.curl("GET", "/readyz", key=None))
        time.sleep(0.2)
    ctx.stop(dst)
    deadline = time.time() + 10
    while True:
        status, _, text = s.curl("GET", "/readyz", key=None)
        if status == 503:
            break
        check(time.time() < deadline, "still ready 10 s after the destination stopped: %s %s", status, text)
        time.sleep(0.3)
    doc = json.loads(text)
    check(doc["status"] == "not ready" and dst.host in doc["reason"], "readyz: %s", doc)
    check(s.curl("GET", "/healthz", key=None)[0] == 200, "healthz failed with a registry down")
    status, took = s.stop()
    check(status == 0 and took < 10, "SIGTERM: exit %s after %.1fs", status, took)


@scenario(weight=6)
def serve_tls(ctx):
    """TLS from certificate and key files: HTTPS with HSTS, TLS 1.1 and
    plain HTTP refused, a missing key file a usage error."""
    src, _ = ctx.shared("small")
    d = ctx.tmp("tls")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = ctx.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", key, "-out", cert])
    check(r.status == 0, "openssl: %s", r.err)
    s = Server(ctx, src.host, src.host, [{"name": "app", "source": "repository: project-a/app"}],
               extra=["--tls-cert", cert, "--tls-key", key]).start()
    check(s.scheme == "https", "serve did not announce https")
    status, hdrs, _ = s.curl("GET", "/api/v1/syncs", curl_args=["--cacert", cert])
    check(status == 200 and hdrs.get("strict-transport-security", "").startswith("max-age="),
          "HTTPS: %s %s", status, hdrs)
    headers_ok(hdrs, "HTTPS")
    p = subprocess.run(["curl", "-sS", "--cacert", cert, "--tls-max", "1.1", "--tlsv1.0",
                        s.url + "/healthz"], capture_output=True, text=True, timeout=30)
    check(p.returncode != 0, "TLS 1.1 accepted: %s", p.stdout)
    p = subprocess.run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:%d/healthz" % s.port],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode != 0 or "ok" not in p.stdout, "plain HTTP answered on the TLS port: %s", p.stdout)
    check(s.stop()[0] == 0, "exit status")
    r = ctx.fl("serve", "--config", s.config, "--listen", "127.0.0.1:0", "--state-dir", s.state,
               "--tls-cert", cert, "--tls-key", os.path.join(d, "missing.pem"), timeout=30)
    check(r.status == 2 and "TLS key" in r.err and "missing.pem" not in r.out, "missing key: %r", r)


@scenario(weight=8)
def serve_schedule_overlap(ctx):
    """An entry due again while its run is still going is skipped and
    counted, never run twice at once."""
    src, _ = ctx.shared("fleet")
    dst = ctx.registry()
    proxy = ctx.faultproxy(src, [{"method": "GET", "path": "/blobs/", "action": "stall", "seconds": 0.5}])
    s = Server(ctx, proxy.host, dst.host, [{"name": "fleet", "source": "repository_pattern: \"*\"",
                                            "interval": "1s"}], extra=["--parallel", "1"]).start()
    deadline = time.time() + 60
    while True:
        text = s.curl("GET", "/metrics", key=None)[2]
        skipped = metric(text, "freightliner_runs_skipped_overlap_total", 'sync="fleet"')
        if skipped >= 2:
            break
        check(time.time() < deadline, "no overlapping run skipped in 60 s")
        time.sleep(0.5)
    running = [j for j in s.jobs() if j["state"] in ("running", "queued")]
    check(len(running) <= 1, "runs of one entry at once: %s", running)
    check(s.stop()[0] == 0, "exit status")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wrk(ctx, url, seconds, headers=()):
    argv = ["wrk", "-t", "2", "-c", "64", "-d", "%ds" % seconds, "--latency", "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    r = ctx.run(argv + [url], timeout=seconds + 60)
    check(r.status == 0, "wrk failed: %s", r.err)
    out = r.out
    p99 = None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "99%":
            v = parts[1]
            p99 = float(v[:-2]) / 1000 if v.endswith("us") else \
                float(v[:-2]) if v.endswith("ms") else float(v[:-1]) * 1000
    reqs = int(out.split(" requests in ")[0].split()[-1])
    errors = 0
    for marker in ("Non-2xx or 3xx responses:", "Socket errors:"):
        if marker in out:
            tail = out.split(marker)[1].splitlines()[0]
            errors += sum(int(x) for x in tail.replace(",", " ").split() if x.isdigit())
    return {"url": url, "requests": reqs, "p99_ms": p99, "errors": errors, "output": out}


@scenario(suites=("serve-bench",), weight=120, timeout=600)
def serve_bench_wrk(ctx):
    """wrk, 64 connections for 30 s each on /healthz, /metrics and an
    authorized job-status URL while replications run (an entry every second
    through a slowed source): zero errors, p99, RSS bounded."""
    src, _ = ctx.shared("fleet")
    dst = ctx.registry()
    proxy = ctx.faultproxy(src, [{"method": "GET", "path": "/blobs/", "action": "stall", "seconds": 0.2}])
    seconds = int(os.environ.get("SERVE_BENCH_SECONDS", "30"))
    s = Server(ctx, proxy.host, dst.host, [{"name": "fleet", "source": "repository_pattern: \"*\"",
                                            "interval": "1s"}], extra=["--parallel", "2"]).start()
    deadline = time.time() + 60
    while not [j for j in s.jobs() if j["state"] == "running"]:
        check(time.time() < deadline, "no replication running")
        time.sleep(0.2)
    job = [j for j in s.jobs() if j["state"] == "running"][0]["id"]
    rss_start = rss_kib(s.proc.pid)
    results = []
    for path, hdrs in (("/healthz", ()), ("/metrics", ()),
                       ("/api/v1/jobs/" + job, ("Authorization: Bearer " + KEY,))):
        res = wrk(ctx, s.url + path, seconds, hdrs)
        res["rss_kib"] = rss_kib(s.proc.pid)
        results.append(res)
        ctx.log("wrk %s: %s", path, {k: v for k, v in res.items() if k != "output"})
    text = s.curl("GET", "/metrics", key=None)[2]
    runs = sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("freightliner_runs_total{"))
    summary = {"seconds": seconds, "rss_start_kib": rss_start, "runs_during": runs,
               "results": [{k: v for k, v in r.items() if k != "output"} for r in results]}
    ctx.note("serve bench: %s", json.dumps(summary))
    with open(os.path.join(os.environ.get("SERVE_BENCH_OUT", ctx.dir), "serve-bench.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for r in results:
        check(r["errors"] == 0 and r["requests"] > 0, "wrk %s: %d errors in %d requests", r["url"],
              r["errors"], r["requests"])
    check(max(r["rss_kib"] for r in results) < 4 * max(rss_start, 16384), "RSS grew: %s", summary)
    check(s.stop()[0] == 0, "exit status")


@scenario(suites=("serve-bench",), weight=600, timeout=1500)
def serve_soak_runs(ctx):
    """500 scheduled runs at a 1 s interval in one process: RSS at the end
    within 10% of RSS after the first 50."""
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    total = int(os.environ.get("SERVE_SOAK_RUNS", "500"))
    s = Server(ctx, src.host, dst.host, [{"name": "app", "source": "repository: project-a/app",
                                          "interval": "1s"}], extra=["--max-kept", "50"]).start()
    samples = {}
    deadline = time.time() + total * 3 + 120
    while True:
        text = s.curl("GET", "/metrics", key=None)[2]
        runs = int(metric(text, "freightliner_runs_total", 'sync="app",outcome="succeeded"'))
        failed = int(metric(text, "freightliner_runs_total", 'sync="app",outcome="failed"'))
        check(failed == 0, "%d runs failed", failed)
        if runs >= 50 and 50 not in samples:
            samples[50] = rss_kib(s.proc.pid)
        if runs >= total:
            samples[total] = rss_kib(s.proc.pid)
            break
        check(time.time() < deadline, "only %d runs in time", runs)
        time.sleep(1)
    growth = (samples[total] - samples[50]) / samples[50]
    summary = {"runs": total, "rss_after_50_kib": samples[50], "rss_end_kib": samples[total],
               "growth_percent": round(growth * 100, 1), "jobs_listed": len(s.jobs())}
    ctx.note("serve soak: %s", json.dumps(summary))
    with open(os.path.join(os.environ.get("SERVE_BENCH_OUT", ctx.dir), "serve-soak.json"), "w") as f:
        json.dump(summary, f, indent=1)
    check(growth <= 0.10, "RSS grew %.1f%% from run 50 to run %d: %s", growth * 100, total, summary)
    check(summary["jobs_listed"] <= 51, "finished jobs not trimmed: %d listed", summary["jobs_listed"])
    check(s.stop()[0] == 0, "exit status")


if __name__ == "__main__":
    e2e.standalone(__file__)
