"""The end-to-end framework: scenarios, their context, registries, the binary.

A scenario is a function `def name(ctx):` in a file of e2e/scenarios/,
registered with the @scenario decorator. It runs in its own process
(e2e/lib/runner.py starts it), with a Context that starts registries,
fault proxies and Freightliner and remembers all of them, so that they are
stopped whatever happens (the runner also stops them if the process dies).
A scenario fails by raising (check() raises Failure), skips by raising
Skip only when the machine cannot run it at all (valgrind against a
sanitizer build); a missing documented command or option is a failure.
The runner counts and prints every skip.

Shared, read-only fixtures: ctx.shared("small" | "fleet" | "big") is a
registry seeded once per suite run and used by every scenario that only
reads from it; the first scenario to ask starts and seeds it (under a file
lock), the runner stops it at the end and checks that nobody wrote to it.
Destinations are always fresh (ctx.registry(), ctx.registries()).
"""
import fcntl
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

LIB = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.dirname(LIB)
REPO = os.path.dirname(E2E)
HARNESS = os.path.join(E2E, "harness")
sys.path.insert(0, HARNESS)

import registry as harness_registry  # noqa: E402
import faultproxy  # noqa: E402
import regclient  # noqa: E402

BIN = os.environ.get("FREIGHTLINER_BIN") or os.path.join(REPO, "bin", "freightliner")
PYTHON = sys.executable or "python3"
COPY_LUA = os.path.join(LIB, "copy_images.lua")

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------
def scenario(suites=("quick", "full"), timeout=180, weight=1, known_bug=None):
    """Register a scenario. weight: a rough duration estimate (seconds) so
    the runner starts the long ones first. known_bug: (description, regex)
    for a scenario that exposes a reported, not yet fixed Freightliner bug:
    while it fails with a message matching regex it is listed as
    "known_bug" (counted as neither pass nor fail); any other failure is a
    failure; once it passes it counts as passed, with a note to remove the
    marker."""
    def deco(fn):
        fn.e2e = {"suites": tuple(suites), "timeout": timeout, "weight": weight,
                  "known_bug": known_bug}
        return fn
    return deco


def sanitized_binary(binary=None):
    """True when the binary links a sanitizer runtime (ASan, TSan, UBSan)."""
    try:
        out = subprocess.run(["ldd", binary or BIN], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(lib in out for lib in ("libasan", "libtsan", "libubsan", "libmsan"))


_SCALE = []


def time_scale():
    """How much longer than a release build a time bound must allow: 4 under
    a sanitizer, else E2E_TIME_SCALE (default 1). Bounds in scenarios are
    written for the release build and multiplied by this."""
    if not _SCALE:
        _SCALE.append(4.0 if sanitized_binary() else float(os.environ.get("E2E_TIME_SCALE", "1")))
    return _SCALE[0]


class Skip(Exception):
    """The scenario cannot run yet (a CLI command is missing)."""


class Failure(AssertionError):
    pass


def check(cond, message, *args):
    if not cond:
        raise Failure(message % args if args else message)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# registries
# ---------------------------------------------------------------------------
class Registry:
    """A running registry (the JSON of registry.py start) and helpers."""

    def __init__(self, info):
        self.info = info
        for k in ("mode", "host", "url", "dir", "ca", "client_cert", "client_key",
                  "username", "password", "pid"):
            setattr(self, k, info.get(k))
        self._client = None
        self._certs = None

    def __repr__(self):
        return "Registry(%s %s)" % (self.mode, self.host)

    # --- direct HTTP (independent of Freightliner) ---
    def client(self):
        if self._client is None:
            self._client = regclient.Client(self.url, self.username, self.password, self.ca,
                                            self.client_cert, self.client_key)
        return self._client

    def request(self, method, path, headers=None):
        return self.client().request(method, path, headers=headers)

    def manifest(self, repo, ref):
        """(status, raw bytes, media type, digest header)."""
        r, data = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref), {"Accept": ACCEPT})
        return r.status, data, r.getheader("Content-Type"), r.getheader("Docker-Content-Digest")

    def head_manifest(self, repo, ref):
        r, _ = self.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref), {"Accept": ACCEPT})
        return r.status

    def blob_exists(self, repo, digest):
        r, _ = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
        return r.status == 200

    def _paged(self, path, field):
        """Follow Link: rel="next" pages of a list endpoint."""
        out = []
        while path:
            r, data = self.request("GET", path)
            if r.status == 404 and field == "tags":
                return out
            if r.status != 200:
                raise Failure("GET %s%s: HTTP %d %s" % (self.host, path, r.status, data[:200]))
            out += json.loads(data).get(field) or []
            link = r.getheader("Link") or ""
            path = link[link.index("<") + 1:link.index(">")] if 'rel="next"' in link else None
            if path and "://" in path:
                path = "/" + path.split("://", 1)[1].split("/", 1)[1]
        return out

    def catalog(self):
        return sorted(self._paged("/v2/_catalog?n=1000", "repositories"))

    def tags(self, repo):
        return sorted(self._paged("/v2/%s/tags/list?n=1000" % repo, "tags"))

    def all_tags(self):
        """[(repo, tag)] of everything the registry holds (catalog walk)."""
        out = []
        for repo in self.catalog():
            for tag in self.tags(repo):
                out.append((repo, tag))
        return out

    # --- storage on disk ---
    def storage(self):
        return os.path.join(self.dir, "data", "docker", "registry", "v2")

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage(), "blobs", "sha256", hexd[:2], hexd, "data")

    def bad_blobs(self):
        """Blobs in storage whose content does not hash to their name."""
        bad = []
        root = os.path.join(self.storage(), "blobs", "sha256")
        if not os.path.isdir(root):
            return bad
        for prefix in os.listdir(root):
            for hexd in os.listdir(os.path.join(root, prefix)):
                path = os.path.join(root, prefix, hexd, "data")
                if not os.path.exists(path):
                    continue
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for piece in iter(lambda: f.read(1 << 20), b""):
                        h.update(piece)
                if h.hexdigest() != hexd:
                    bad.append("sha256:" + hexd)
        return bad

    def fingerprint(self):
        """A hash of every file name and size under the storage dir."""
        h = hashlib.sha256()
        root = self.storage()
        for d, dirs, files in sorted(os.walk(root)):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(d, name)
                try:
                    size = os.path.getsize(p)
                except OSError:
                    continue
                h.update(("%s %d\n" % (os.path.relpath(p, root), size)).encode())
        return h.hexdigest()

    # --- how other tools reach it ---
    def skopeo_certs(self):
        """A cert dir in skopeo's layout (ca.crt, client.cert, client.key)."""
        if self._certs is None and self.info.get("cert_dir"):
            self._certs = self.info["cert_dir"]
        if self._certs is None and self.ca:
            d = os.path.join(self.dir, "skopeo-certs")
            os.makedirs(d, exist_ok=True)
            shutil.copy(self.ca, os.path.join(d, "ca.crt"))
            if self.client_cert:
                shutil.copy(self.client_cert, os.path.join(d, "client.cert"))
                shutil.copy(self.client_key, os.path.join(d, "client.key"))
            self._certs = d
        return self._certs

    def skopeo_flags(self, side):
        """Flags for skopeo: side is "" (inspect), "src" or "dest"."""
        p = "--" + (side + "-" if side else "")
        flags = []
        if self.ca:
            flags += [p + "cert-dir", self.skopeo_certs(), p + "tls-verify=true"]
        else:
            flags += [p + "tls-verify=false"]
        if self.username:
            flags += [p + "creds", "%s:%s" % (self.username, self.password)]
        return flags

    def lua_options(self, password_env="E2E_REGISTRY_PASSWORD"):
        """Options for fl.registry_options / fl.registry (as a JSON-able dict)."""
        o = {}
        if self.ca:
            o["ca_file"] = self.ca
        if self.client_cert:
            o["client_cert"], o["client_key"] = self.client_cert, self.client_key
        if self.username:
            o["username"], o["password_env"] = self.username, password_env
        if self.mode in ("plain", "htpasswd", "token"):
            o["insecure"] = True
        return o


def seed_registry(reg, preset, extra=(), out=None):
    cmd = [PYTHON, os.path.join(HARNESS, "seed.py"), "--registry", reg.url, "--spec", preset]
    if reg.username:
        cmd += ["--user", reg.username, "--password", reg.password]
    if reg.ca:
        cmd += ["--ca", reg.ca]
    if reg.client_cert:
        cmd += ["--cert", reg.client_cert, "--key", reg.client_key]
    cmd += list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise Failure("seeding %s (%s) failed:\n%s" % (reg.host, preset, p.stderr[-3000:]))
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    if out:
        with open(out, "w") as f:
            json.dump(summary, f)
    return summary["images"]


# presets of the shared sources, by suite
def shared_presets(suite):
    quick = suite == "quick"
    return {
        "small": ["small"],
        "fleet": ["fleet", "--repos", "6" if quick else "16", "--tags", "2" if quick else "4",
                  "--layer-size", str((256 if quick else 1024) * 1024)],
        "big": ["big", "--big-size", str((64 if quick else 256) << 20)],
    }


def proc_start_time(pid):
    """The start time of a process (field 22 of /proc/PID/stat), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class Result:
    def __init__(self, argv, status, out, err, seconds):
        self.argv, self.status, self.out, self.err, self.seconds = argv, status, out, err, seconds

    def __repr__(self):
        return "exit %s after %.1fs: %s\nstdout: %s\nstderr: %s" % (
            self.status, self.seconds, " ".join(shlex.quote(a) for a in self.argv),
            self.out[-2000:], self.err[-2000:])

    def json_lines(self):
        out = []
        for line in self.out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


class Proxy:
    def __init__(self, info, log, access_log, proc):
        self.info, self.log, self.access_log, self.proc = info, log, access_log, proc
        self.host, self.url = info["host"], info["url"]

    def faults(self):
        return faultproxy.read_faults(self.log)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def requests(self):
        return faultproxy.read_faults(self.access_log)


# ---------------------------------------------------------------------------
# the context of one scenario
# ---------------------------------------------------------------------------
class Context:
    def __init__(self, name, suite, root, workdir, log_path):
        self.name, self.suite, self.root, self.dir = name, suite, root, workdir
        self.quick = suite == "quick"
        self.full = suite == "full"
        self.rng = random.Random(hashlib.sha256(name.encode()).digest())
        self._log = open(log_path, "a", buffering=1)
        self._registries = []
        self._procs = []
        self._n = 0
        self._lock = threading.Lock()
        self.notes = []
        os.makedirs(workdir, exist_ok=True)

    # --- bookkeeping ---
    def log(self, fmt, *args):
        msg = fmt % args if args else fmt
        self._log.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))

    def note(self, fmt, *args):
        """A remark that ends up in the scenario's message in results.json."""
        msg = fmt % args if args else fmt
        self.notes.append(msg)
        self.log("note: %s", msg)

    def tmp(self, name="tmp"):
        with self._lock:
            self._n += 1
            d = os.path.join(self.dir, "%s-%d" % (name, self._n))
        os.makedirs(d)
        return d

    def cleanup(self):
        for p in self._procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        for reg in self._registries:
            try:
                harness_registry.stop(reg.dir)
            except Exception as e:  # noqa: BLE001
                self.log("stopping %s: %s", reg.dir, e)
        self._log.close()

    # --- registries ---
    def registry(self, mode="plain", **kw):
        d = self.tmp("reg-" + mode)
        self.log("starting a %s registry in %s", mode, d)
        info = harness_registry.start(mode, d, **kw)
        reg = Registry(info)
        with self._lock:
            self._registries.append(reg)
        self.log("registry %s: %s", mode, reg.host)
        return reg

    def stop(self, thing):
        """Stop a registry or proxy before the scenario ends (frees resources)."""
        if isinstance(thing, Registry):
            harness_registry.stop(thing.dir)
            with self._lock:
                if thing in self._registries:
                    self._registries.remove(thing)
        elif isinstance(thing, Proxy):
            thing.stop()

    def registries(self, *modes):
        """Start several registries at once (in parallel)."""
        out, errors = [None] * len(modes), []

        def start(i, m):
            try:
                out[i] = self.registry(m)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = [threading.Thread(target=start, args=(i, m)) for i, m in enumerate(modes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out

    def seed(self, reg, preset, *extra):
        t = time.time()
        images = seed_registry(reg, preset, extra)
        self.log("seeded %s with %s %s: %d images in %.1fs", reg.host, preset, " ".join(extra),
                 len(images), time.time() - t)
        return images

    def shared(self, preset):
        """The suite's read-only source seeded with `preset`: (registry, images)."""
        base = os.path.join(self.root, "shared")
        os.makedirs(base, exist_ok=True)
        d = os.path.join(base, preset)
        with open(os.path.join(base, preset + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = os.path.join(d, "seeded.json")
            if os.path.exists(done):
                with open(done) as f:
                    s = json.load(f)
                return Registry(s["info"]), s["images"]
            if os.path.exists(d):  # a half-made fixture (its maker died)
                harness_registry.stop(d)
                shutil.rmtree(d, ignore_errors=True)
            t = time.time()
            info = harness_registry.start("plain", d)
            reg = Registry(info)
            images = seed_registry(reg, shared_presets(self.suite)[preset][0],
                                   shared_presets(self.suite)[preset][1:])
            s = {"info": info, "images": images, "fingerprint": reg.fingerprint()}
            with open(done + ".tmp", "w") as f:
                json.dump(s, f)
            os.rename(done + ".tmp", done)
            self.log("shared %s source %s seeded in %.1fs", preset, reg.host, time.time() - t)
            return reg, images

    # --- processes ---
    def run(self, argv, timeout=300, env=None, input=None):
        """Run a command to its end; returns a Result (never raises on status)."""
        e = dict(os.environ)
        e.update(env or {})
        t = time.time()
        self.log("$ %s", " ".join(shlex.quote(str(a)) for a in argv))
        try:
            p = subprocess.run([str(a) for a in argv], capture_output=True, env=e, timeout=timeout,
                               input=input.encode() if isinstance(input, str) else input)
        except subprocess.TimeoutExpired as ex:
            out = (ex.stdout or b"").decode(errors="replace")
            err = (ex.stderr or b"").decode(errors="replace")
            self.log("timed out after %ss\n%s\n%s", timeout, out[-3000:], err[-3000:])
            raise Failure("timed out after %ss: %s" % (timeout, " ".join(map(str, argv))))
        r = Result([str(a) for a in argv], p.returncode, p.stdout.decode(errors="replace"),
                   p.stderr.decode(errors="replace"), time.time() - t)
        self.log("-> exit %d in %.2fs\n  stdout: %s\n  stderr: %s", r.status, r.seconds,
                 r.out[-4000:].replace("\n", "\n          "), r.err[-4000:].replace("\n", "\n          "))
        return r

    def spawn(self, argv, env=None, stdout=None, stderr=None):
        """Start a process in its own group (killed at cleanup)."""
        e = dict(os.environ)
        e.update(env or {})
        self.log("$ %s &", " ".join(shlex.quote(str(a)) for a in argv))
        p = subprocess.Popen([str(a) for a in argv], env=e, start_new_session=True,
                             stdout=stdout or subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL)
        with self._lock:
            self._procs.append(p)
        # let the runner kill it even if this process dies (pid + start time,
        # against pid reuse)
        with open(os.path.join(self.dir, "proc-%d.pid" % p.pid), "w") as f:
            f.write("%d %s" % (p.pid, proc_start_time(p.pid)))
        return p

    def fl(self, *args, **kw):
        return self.run([BIN] + list(args), **kw)

    def lua(self, code, *args, **kw):
        """Run a Lua script (text) with `freightliner run`."""
        path = os.path.join(self.tmp("lua"), "script.lua")
        with open(path, "w") as f:
            f.write(code)
        return self.fl("run", path, *args, **kw)

    def copy_spec(self, images, opts=None, registries=None, configure=None, concurrency=4):
        d = self.tmp("copy")
        spec = {"images": images, "opts": opts or {}, "registries": registries or {},
                "configure": configure or {}, "concurrency": concurrency}
        path = os.path.join(d, "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        return path

    def copy(self, images, opts=None, registries=None, configure=None, concurrency=4,
             env=None, timeout=300):
        """Copy [{"src", "dst", "opts"?}] with fl.copy in one `freightliner run`
        (e2e/lib/copy_images.lua). Returns (Result, {src: image result}, counters)."""
        path = self.copy_spec(images, opts, registries, configure, concurrency)
        r = self.fl("run", COPY_LUA, path, env=env, timeout=timeout)
        results, counters = {}, None
        for ev in r.json_lines():
            if ev.get("event") == "image":
                results[ev["src"] + " -> " + ev["dst"]] = ev
            elif ev.get("event") == "done":
                counters = ev.get("counters")
        return r, results, counters

    def copy_ok(self, images, **kw):
        """copy() that must succeed for every image; returns the result list."""
        r, results, counters = self.copy(images, **kw)
        check(r.status == 0, "copy failed: %r", r)
        out = []
        for img in images:
            res = results.get(img["src"] + " -> " + img["dst"])
            check(res is not None and res.get("ok"), "no successful result for %s: %r", img["src"], r)
            out.append(res)
        return out, counters

    def faultproxy(self, upstream, rules, seed=0):
        d = self.tmp("proxy")
        rules_path = os.path.join(d, "rules.json")
        with open(rules_path, "w") as f:
            json.dump(rules, f, indent=1)
        log, access = os.path.join(d, "faults.jsonl"), os.path.join(d, "access.jsonl")
        info_path = os.path.join(d, "info.json")
        p = self.spawn([PYTHON, os.path.join(HARNESS, "faultproxy.py"), "--upstream", upstream.url,
                        "--rules", rules_path, "--seed", str(seed), "--log", log,
                        "--access-log", access, "--info", info_path],
                       stderr=open(os.path.join(d, "stderr.log"), "w"))
        deadline = time.time() + 10
        while not os.path.exists(info_path):
            if p.poll() is not None or time.time() > deadline:
                raise Failure("faultproxy did not start: %s" %
                              open(os.path.join(d, "stderr.log")).read()[-2000:])
            time.sleep(0.02)
        with open(info_path) as f:
            info = json.load(f)
        self.log("faultproxy %s -> %s, rules %s", info["host"], upstream.host, json.dumps(rules))
        return Proxy(info, log, access, p)

    # --- the CLI under construction ---
    def command_available(self, name):
        r = self.fl("help", name, timeout=30)
        return r.status == 0

    # Every command and option a scenario requires is documented in the
    # README, so its absence (or a broken `help`) is a failure, never a skip.
    def require_command(self, *names):
        for name in names:
            if not self.command_available(name):
                raise Failure("documented command %s is missing: `freightliner help %s` failed"
                              % (name, name))

    def require_option(self, command, option):
        r = self.fl("help", command, timeout=30)
        check(r.status == 0, "`freightliner help %s` failed: %r", command, r)
        if option not in r.out:
            raise Failure("documented option %s %s is missing from `freightliner help %s`"
                          % (command, option, command))


def standalone(path):
    """`e2e/scenarios/X.py [quick|full] [runner options]`: the scenarios of one file."""
    args = sys.argv[1:]
    suite = args.pop(0) if args and args[0] in ("quick", "full") else "quick"
    runner = os.path.join(LIB, "runner.py")
    os.execv(sys.executable, [sys.executable, runner, suite, "--file", os.path.abspath(path)] + args)
