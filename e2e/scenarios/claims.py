"""What the README promises, each tested the way a user meets it: through the
CLI against real registries, judged from outside Freightliner (the
registry's storage and logs, a recording proxy, skopeo, the kernel's
accounting of the process).

Credentials from Docker's config.json (auths, credHelpers, credsStore) and
containers' auth.json in a real connection; the Authorization header never
in debug logs; SIGINT exiting 130 with the metrics file written; resume
refusing a bad checkpoint; --referrers; tls_verify=false and pinned_pubkey;
chunk_size; the constant-memory claim for a big layer.
"""
import base64
import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import BIN, check, scenario  # noqa: E402


def clean_env(ctx, **extra):
    """An environment with a fresh HOME and no credential sources but ours."""
    home = ctx.tmp("home")
    env = {"HOME": home, "DOCKER_CONFIG": os.path.join(home, "no-docker"),
           "REGISTRY_AUTH_FILE": os.path.join(home, "no-auth.json"),
           "XDG_RUNTIME_DIR": os.path.join(home, "no-xdg")}
    env.update(extra)
    return home, env


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def helper_script(ctx, name, user, password, calls_log):
    """A docker-credential-NAME program on a PATH dir: answers `get` for any
    server with user/password and logs each call."""
    d = ctx.tmp("bin")
    path = os.path.join(d, "docker-credential-" + name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                "read server\n"
                "echo \"$1 $server\" >> %s\n"
                "[ \"$1\" = get ] || exit 1\n"
                "printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$server\"\n"
                % (calls_log, user, password))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return d


def replicate_into(ctx, src, dst, env, tag="v1.0"):
    return ctx.fl("replicate", "%s/project-a/app:%s" % (src.host, tag),
                  "%s/creds/app:%s" % (dst.host, tag), "--no-progress", env=env, timeout=120)


def auth_b64(reg):
    return base64.b64encode(("%s:%s" % (reg.username, reg.password)).encode()).decode()


@scenario(weight=3)
def claim_credentials_from_docker_config_auths(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry("htpasswd")
    home, env = clean_env(ctx)
    r = replicate_into(ctx, src, dst, env)
    check(r.status == 1 and "UNAUTHORIZED" in r.out + r.err,
          "without credentials the push must be refused (exit 1, UNAUTHORIZED): %r", r)
    write_json(os.path.join(env["DOCKER_CONFIG"], "config.json"),
               {"auths": {dst.host: {"auth": auth_b64(dst)}}})
    r = replicate_into(ctx, src, dst, env)
    check(r.status == 0, "replicate with credentials from $DOCKER_CONFIG/config.json failed: %r", r)
    verify.same_image(ctx, src, "project-a/app", "v1.0", dst, "creds/app", "v1.0")


@scenario(weight=3)
def claim_credentials_from_cred_helpers_and_creds_store(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry("htpasswd")
    for key in ("credHelpers", "credsStore"):
        home, env = clean_env(ctx)
        calls = os.path.join(home, "calls.log")
        bindir = helper_script(ctx, "fltest", dst.username, dst.password, calls)
        env["PATH"] = bindir + ":" + os.environ["PATH"]
        doc = {"credHelpers": {dst.host: "fltest"}} if key == "credHelpers" else {"credsStore": "fltest"}
        write_json(os.path.join(env["DOCKER_CONFIG"], "config.json"), doc)
        tag = "v1.0" if key == "credHelpers" else "v1.1"
        r = replicate_into(ctx, src, dst, env, tag)
        check(r.status == 0, "replicate with credentials from %s failed: %r", key, r)
        verify.same_image(ctx, src, "project-a/app", tag, dst, "creds/app", tag)
        with open(calls) as f:
            lines = [l.split() for l in f.read().splitlines()]
        check(lines and all(l[0] == "get" for l in lines), "%s: helper calls %s", key, lines)
        check(any(l[1:] and dst.host in l[1] for l in lines), "%s: the helper was never asked for %s: %s",
              key, dst.host, lines)
        check(len(lines) <= 4, "%s: the helper ran %d times for one image (once per request?)", key, len(lines))


@scenario(weight=2)
def claim_credentials_from_containers_auth_json(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry("htpasswd")
    home, env = clean_env(ctx)
    write_json(env["REGISTRY_AUTH_FILE"], {"auths": {dst.host: {"auth": auth_b64(dst)}}})
    r = replicate_into(ctx, src, dst, env)
    check(r.status == 0, "replicate with credentials from $REGISTRY_AUTH_FILE failed: %r", r)
    verify.same_image(ctx, src, "project-a/app", "v1.0", dst, "creds/app", "v1.0")


@scenario(weight=3)
def claim_authorization_never_in_debug_logs(ctx):
    src, _ = ctx.shared("small")
    basic, token = ctx.registries("htpasswd", "token")
    for dst in (basic, token):
        home, env = clean_env(ctx, FREIGHTLINER_LOG_LEVEL="debug")
        write_json(os.path.join(env["DOCKER_CONFIG"], "config.json"),
                   {"auths": {dst.host: {"auth": auth_b64(dst)}}})
        r = replicate_into(ctx, src, dst, env)
        check(r.status == 0, "replicate into the %s registry failed: %r", dst.mode, r)
        text = r.out + r.err
        check(" GET " in text or "GET " in text, "the debug log traced no request at all: %s", text[-1500:])
        for secret in (dst.password, auth_b64(dst)):
            check(secret not in text, "the %s registry's secret %r appears in the debug log", dst.mode,
                  secret[:4] + "...")
        leaked = re.findall(r"(?i)authorization:\s*(?:basic|bearer)\s+[A-Za-z0-9+/=._-]{8,}", text)
        check(not leaked, "an Authorization header value is in the debug log: %s", leaked[:2])
        # a bearer token is a JWT: three base64url parts
        jwts = re.findall(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", text)
        check(not jwts, "a bearer token is in the debug log")


def big_layer_upload_started(dst):
    for root, _, files in os.walk(os.path.join(dst.dir, "data")):
        if "_uploads" in root and "data" in files:
            try:
                if os.path.getsize(os.path.join(root, "data")) > (4 << 20):
                    return True
            except OSError:
                pass
    return False


@scenario(weight=6, timeout=300)
def claim_sigint_exits_130_and_writes_metrics(ctx):
    src, _ = ctx.shared("big")
    dst = ctx.registry()
    metrics = os.path.join(ctx.tmp("m"), "metrics.json")
    p = ctx.spawn([BIN, "replicate", "%s/big/layer:v1" % src.host, "%s/big/layer:v1" % dst.host,
                   "--metrics-file", metrics, "--no-progress"])
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not big_layer_upload_started(dst):
        time.sleep(0.02)
    check(p.poll() is None, "the copy ended before it could be interrupted (exit %s)", p.poll())
    p.send_signal(signal.SIGINT)
    try:
        status = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise e2e.Failure("no exit within 60 s of SIGINT")
    check(status == 130, "exit status after SIGINT: %s, want 130", status)
    check(os.path.exists(metrics), "no metrics file written on interruption")
    with open(metrics) as f:
        doc = json.load(f)
    check(isinstance(doc, dict) and doc, "the metrics file is empty: %r", doc)
    check(dst.head_manifest("big/layer", "v1") == 404, "an interrupted copy left a tag at the destination")


@scenario(weight=2)
def claim_resume_refuses_a_bad_checkpoint(ctx):
    d = ctx.tmp("ck")
    for name, content in (("garbage", b"this is not a checkpoint\n"),
                          ("truncated", b'{"version": 1, "plan": ['),
                          ("foreign", b'{"hello": "world"}\n')):
        path = os.path.join(d, name + ".ckpt")
        with open(path, "wb") as f:
            f.write(content)
        before = hashlib.sha256(content).hexdigest()
        r = ctx.fl("resume", "--checkpoint-file", path, "--no-progress", timeout=60)
        check(r.status == 2, "resume of a %s checkpoint: exit %s, want 2: %r", name, r.status, r)
        check("Traceback" not in r.err and "stack traceback" not in r.err,
              "a traceback for a bad %s checkpoint: %s", name, r.err[-800:])
        check(path in r.err or os.path.basename(path) in r.err, "the error does not name the file: %s", r.err)
        with open(path, "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == before, "resume changed the %s checkpoint", name)


@scenario(weight=3)
def claim_referrers_on_the_cli(ctx):
    src, _ = ctx.shared("small")
    _, _, _, digest = src.manifest("project-a/app", "v1.0")
    sig_tag = "sha256-%s.sig" % digest.split(":", 1)[1]
    check(sig_tag in src.tags("project-a/app"), "the seeded source has no signature tag %s", sig_tag)
    plain, with_refs = ctx.registries("plain", "plain")
    r = ctx.fl("replicate", "%s/project-a/app:v1.0" % src.host, "%s/r/app:v1.0" % plain.host, "--no-progress")
    check(r.status == 0, "replicate failed: %r", r)
    check(sig_tag not in plain.tags("r/app"), "the signature came along without --referrers")
    r = ctx.fl("replicate", "%s/project-a/app:v1.0" % src.host, "%s/r/app:v1.0" % with_refs.host,
               "--referrers", "--no-progress")
    check(r.status == 0, "replicate --referrers failed: %r", r)
    check(sig_tag in with_refs.tags("r/app"), "--referrers did not copy %s: %s", sig_tag, with_refs.tags("r/app"))
    _, sraw, _, sdig = src.manifest("project-a/app", sig_tag)
    _, draw, _, ddig = with_refs.manifest("r/app", sig_tag)
    check(sdig == ddig and sraw == draw, "the signature manifest differs: %s vs %s", sdig, ddig)


def spki_pin(cert_path):
    der = subprocess.run("openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der" % cert_path,
                         shell=True, capture_output=True, check=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def sync_file(ctx, src, dst, dst_extra):
    lines = ["version: 1", "registries:", "  src: { host: \"%s\" }" % src.host,
             "  dst:", "    host: \"%s\"" % dst.host] + ["    " + l for l in dst_extra] + [
        "sync:", "  - source: { registry: src, repository: project-a/app }",
        "    destination: { registry: dst, prefix: m }", "    tags: { include: [\"v1.0\"] }"]
    path = os.path.join(ctx.tmp("sync"), "sync.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def server_cert(reg):
    for name in ("server.crt", "registry.crt", "cert.pem", "server.pem"):
        for root in (reg.dir, reg.info.get("cert_dir") or reg.dir):
            p = os.path.join(root, name)
            if os.path.exists(p):
                return p
    raise e2e.Failure("no server certificate found in %s" % reg.dir)


@scenario(weight=4)
def claim_tls_verify_off_warns_and_pinned_pubkey_holds(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry("tls")
    # verification off: works without the CA, and says so
    r = ctx.fl("sync", "--config", sync_file(ctx, src, dst, ["tls: { verify: false }"]), "--no-progress")
    check(r.status == 0, "sync with tls.verify=false failed: %r", r)
    check("TLS verification is off" in r.err, "no warning that TLS verification is off: %s", r.err[-800:])
    # without the CA and with verification on: refused
    r = ctx.fl("sync", "--config", sync_file(ctx, src, dst, []), "--no-progress")
    check(r.status == 1 and "TLS" in r.out + r.err, "an untrusted certificate was accepted: %r", r)
    # the right pin: accepted; a wrong pin: refused
    pin = spki_pin(server_cert(dst))
    r = ctx.fl("sync", "--config", sync_file(ctx, src, dst, ["tls: { ca_file: \"%s\", pinned_pubkey: \"%s\" }"
                                                          % (dst.ca, pin)]), "--no-progress")
    check(r.status == 0, "sync with the server's own pinned_pubkey failed: %r", r)
    wrong = "sha256//" + base64.b64encode(b"\0" * 32).decode()
    r = ctx.fl("sync", "--config", sync_file(ctx, src, dst, ["tls: { ca_file: \"%s\", pinned_pubkey: \"%s\" }"
                                                          % (dst.ca, wrong)]), "--no-progress", "--force")
    check(r.status == 1, "a wrong pinned_pubkey was accepted: %r", r)
    verify.same_image(ctx, src, "project-a/app", "v1.0", dst, "m/project-a/app", "v1.0")


@scenario(weight=3)
def claim_chunk_size_uploads_in_patch_chunks(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    dp = ctx.faultproxy(dst, [])
    chunk = 16384
    r = ctx.fl("sync", "--config", sync_file(ctx, src, dp, ["chunk_size: %d" % chunk]), "--no-progress")
    check(r.status == 0, "sync with chunk_size failed: %r", r)
    patches = [q for q in dp.requests() if q["method"] == "PATCH"]
    check(patches, "no PATCH request reached the registry with chunk_size %d" % chunk)
    sizes = [q.get("request_bytes") or 0 for q in patches]
    check(max(sizes) <= chunk, "a PATCH carried %d bytes, more than chunk_size %d", max(sizes), chunk)
    check(any(s == chunk for s in sizes), "no PATCH carried a whole chunk of %d bytes: %s", chunk, sizes[:20])
    verify.same_image(ctx, src, "project-a/app", "v1.0", dst, "m/project-a/app", "v1.0")


@scenario(weight=8, timeout=300)
def claim_constant_memory_for_a_big_layer(ctx):
    """README: memory per copy is the pipe plus libcurl's buffers, whatever
    the blob's size. The kernel's peak RSS of the process (ru_maxrss of the
    reaped child) must stay far below the layer's size."""
    lib = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    if any(s in lib for s in ("libasan", "libtsan", "libubsan")):
        raise e2e.Skip("a sanitizer build's memory use says nothing about the release build's")
    src, images = ctx.shared("big")
    dst = ctx.registry()
    _, raw, _, _ = src.manifest("big/layer", "v1")
    size = max(l["size"] for l in json.loads(raw)["layers"])
    # wait4 gives the rusage of exactly this child
    err_path = os.path.join(ctx.tmp("rss"), "stderr")
    with open(err_path, "w") as err:
        p = subprocess.Popen([BIN, "replicate", "%s/big/layer:v1" % src.host, "%s/big/layer:v1" % dst.host,
                              "--no-progress"], stdout=subprocess.DEVNULL, stderr=err)
        _, wstatus, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(wstatus)
    peak_kib = usage.ru_maxrss
    with open(err_path) as f:
        check(p.returncode == 0, "the copy failed: %s", f.read()[-1500:])
    ctx.note("layer %d MiB, peak RSS %.1f MiB", size >> 20, peak_kib / 1024)
    check(peak_kib < 48 * 1024, "peak RSS %.1f MiB copying a %d MiB layer (bound 48 MiB)",
          peak_kib / 1024, size >> 20)
    verify.same_image(ctx, src, "big/layer", "v1", dst, "big/layer", "v1")


@scenario(weight=4)
def claim_connect_timeout_and_low_speed_time(ctx):
    """connect_timeout_ms: a listener whose accept queue is full answers no
    SYN (a black hole on loopback). low_speed_time: a registry that stops
    sending mid-answer. Each request gives up after the configured time."""
    src, _ = ctx.shared("small")
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname(), timeout=2)  # fills the queue
    stall = ctx.faultproxy(src, [{"name": "stall", "method": "GET", "path": "/v2/project-a/app/manifests/",
                                  "action": "stall", "seconds": 60}])
    try:
        r = ctx.lua("""
local host, slow = ...
local now = require("freightliner.core").now -- monotonic seconds
local function timed(label, f)
  local t = now()
  local ok, msg, code = f()
  print(string.format("%s %s %s %.2f %s", label, tostring(ok and true), tostring(code), now() - t, msg))
end
local reg = assert(fl.registry(host, { connect_timeout_ms = 1000, max_attempts = 1 }))
timed("connect", function() return reg:ping() end)
local s = assert(fl.registry(slow, { low_speed_time = 2, max_attempts = 1 }))
timed("lowspeed", function() return s:manifest("project-a/app:v1.0") end)
""", "127.0.0.1:%d" % hole.getsockname()[1], stall.host, timeout=120)
    finally:
        filler.close()
        hole.close()
    check(r.status == 0, "the timeout script failed: %r", r)
    ctx.log("script output: %s", r.out)
    conn = [l for l in r.out.splitlines() if l.startswith("connect ")]
    slow = [l for l in r.out.splitlines() if l.startswith("lowspeed ")]
    scale = e2e.time_scale()
    for lines, what, want in ((conn, "connect to a black hole (connect_timeout_ms 1000)", 1.0),
                              (slow, "manifest from a stalled registry (low_speed_time 2)", 2.0)):
        check(lines, "no result for the %s: %s", what, r.out)
        _, ok, code, secs = lines[0].split()[:4]
        secs = float(secs)
        check(ok == "nil", "the %s succeeded: %s", what, lines[0])
        check(want * 0.9 <= secs < (want + 3) * scale, "the %s gave up after %.2f s, want about %.0f s: %s",
              what, secs, want, lines[0])
    ctx.note("%s | %s", conn[0][:90], slow[0][:90])


if __name__ == "__main__":
    e2e.standalone(__file__)
