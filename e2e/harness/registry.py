#!/usr/bin/env python3
"""Start and stop real Distribution registries on loopback for tests.

Debian's `docker-registry` (the CNCF Distribution registry, 2.8) is started
in a directory of its own, on a free 127.0.0.1 port, in one of these modes:

  plain      HTTP, no auth
  htpasswd   HTTP + Basic auth (bcrypt htpasswd file made by `htpasswd -Bbn`)
  tls        HTTPS; a CA and a server certificate for 127.0.0.1 / localhost
             (SAN IP and DNS) are generated with openssl at start
  mtls       tls + a client certificate required (client cert/key signed by
             the same CA are generated too)
  token      HTTP + `auth: token`, with the token issuer of token_server.py
             started beside it (a separate process)
  token-tls  token over HTTPS: registry and token issuer both serve TLS with
             certificates from the generated CA

CLI:
  registry.py start --mode MODE --dir DIR [--token-ttl S] [--token-leeway S]
                    [--user U --password P]
  registry.py stop --dir DIR          (idempotent)

`start` prints ONE line of JSON, also written to DIR/info.json:
  {"mode", "host": "127.0.0.1:PORT", "url": "http(s)://127.0.0.1:PORT",
   "pid", "dir", "ca", "client_cert", "client_key", "username", "password",
   "token_url", "token_pid", "cert_dir", "config", "log"}
Absent fields are null. `cert_dir` is a directory laid out for
`skopeo --cert-dir` / docker certs.d (ca.crt, and client.cert/client.key in
mtls mode).

As a module:
  info = start(mode, dir, token_ttl=300, user=None, password=None, ...)
  stop(dir)
  with Registry("tls") as info: ...      # dir=None: a temp dir, removed after

Files in DIR: config.yml, data/ (storage), registry.log, info.json, and as
the mode needs: ca.crt/ca.key, server.crt/key, client.crt/key, htpasswd,
token.key/token.crt (JWT signing), token.json, token.log.
Only the standard library is used.
"""
import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import token_server  # noqa: E402  (sibling module; for ensure_signing_cert)

MODES = ("plain", "htpasswd", "tls", "mtls", "token", "token-tls")
TLS_MODES = ("tls", "mtls", "token-tls")
AUTH_MODES = ("htpasswd", "token", "token-tls")
TOKEN_MODES = ("token", "token-tls")
DEFAULT_USER = "fluser"
SERVICE = token_server.DEFAULT_SERVICE
ISSUER = token_server.DEFAULT_ISSUER
# distribution 2.8 accepts a token until exp + 60 s (registry/auth/token/token.go,
# Leeway); the issuer writes exp that much early so --token-ttl is the real life.
DISTRIBUTION_LEEWAY = 60
START_ATTEMPTS = 5
READY_TIMEOUT = 10.0

# Popen objects of children started by this process, by pid, so that stop()
# can reap them (a zombie would still look alive to kill(pid, 0)).
_CHILDREN = {}


class RegistryError(RuntimeError):
    """A registry (or its token issuer) could not be started."""


def free_port():
    """A currently free loopback port: bind port 0, read it, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*cmd, **kw):
    """Run a helper tool; raise with its stderr if it fails."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RegistryError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def _tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return "(no %s)" % path


# --- certificates ---------------------------------------------------------

def make_tls_material(d, client=False):
    """CA, server cert (SAN IP:127.0.0.1, DNS:localhost) and maybe a client cert.

    EC P-256 keys keep generation fast. Also lays out d/certs.d for
    `skopeo --cert-dir`: ca.crt, plus client.cert/client.key for mTLS.
    Returns a dict of paths.
    """
    p = lambda name: os.path.join(d, name)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run("openssl", "req", "-x509", *ec, "-days", "30", "-subj", "/CN=freightliner test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", p("ca.key"), "-out", p("ca.crt"))
    exts = {
        "server": "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                  "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        "client": "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                  "extendedKeyUsage=clientAuth\n",
    }
    for name in ("server", "client") if client else ("server",):
        with open(p(name + ".ext"), "w") as f:
            f.write(exts[name])
        _run("openssl", "req", "-new", *ec, "-subj", "/CN=freightliner test " + name,
             "-keyout", p(name + ".key"), "-out", p(name + ".csr"))
        _run("openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"),
             "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "30",
             "-extfile", p(name + ".ext"), "-out", p(name + ".crt"))
    certs_d = p("certs.d")
    os.makedirs(certs_d, exist_ok=True)
    shutil.copy(p("ca.crt"), os.path.join(certs_d, "ca.crt"))
    out = {"ca": p("ca.crt"), "server_cert": p("server.crt"), "server_key": p("server.key"),
           "cert_dir": certs_d, "client_cert": None, "client_key": None}
    if client:
        shutil.copy(p("client.crt"), os.path.join(certs_d, "client.cert"))
        shutil.copy(p("client.key"), os.path.join(certs_d, "client.key"))
        out.update(client_cert=p("client.crt"), client_key=p("client.key"))
    return out


# --- config ---------------------------------------------------------------

def config_yaml(d, port, mode, tls=None, token_url=None):
    """The registry config. String values are JSON-quoted (valid YAML)."""
    q = json.dumps
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        "    rootdirectory: " + q(os.path.join(d, "data")),
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        "  addr: " + q("127.0.0.1:%d" % port),
        "  secret: " + q(secrets.token_hex(24)),
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]  # no http.debug section: no debug/metrics server
    if tls:
        lines += ["  tls:",
                  "    certificate: " + q(tls["server_cert"]),
                  "    key: " + q(tls["server_key"])]
        if mode == "mtls":
            lines += ["    clientcas:", "      - " + q(tls["ca"])]
    if mode == "htpasswd":
        lines += ["auth:", "  htpasswd:",
                  "    realm: " + q("freightliner-test"),
                  "    path: " + q(os.path.join(d, "htpasswd"))]
    if mode in TOKEN_MODES:
        lines += ["auth:", "  token:",
                  "    realm: " + q(token_url),
                  "    service: " + q(SERVICE),
                  "    issuer: " + q(ISSUER),
                  "    rootcertbundle: " + q(os.path.join(d, "token.crt"))]
    return "\n".join(lines) + "\n"


# --- processes ------------------------------------------------------------

def _ssl_context(ca, client_cert=None, client_key=None):
    ctx = ssl.create_default_context(cafile=ca)
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


def _v2_answers(port, ctx):
    """True when GET /v2/ answers 200 or 401."""
    try:
        if ctx:
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            c.request("GET", "/v2/")
            r = c.getresponse()
            r.read()
            return r.status in (200, 401)
        finally:
            c.close()
    except (OSError, http.client.HTTPException):
        return False


def _spawn(cmd, log_path):
    """Start cmd in its own process group (session), output to log_path."""
    with open(log_path, "ab") as log:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
    _CHILDREN[p.pid] = p
    return p


def _alive(pid):
    """Is pid a live (non-zombie) process? Reaps it if it is our child."""
    p = _CHILDREN.get(pid)
    if p is not None:
        if p.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill(pids, must_contain, timeout=5.0):
    """SIGTERM each pid's process group, SIGKILL what is left, wait for exit.

    must_contain guards against pid reuse: a process is only signalled if its
    command line names this registry's directory. All pids are signalled
    first and then awaited together, so stopping a pair costs one wait.
    """
    pids = [p for p in pids if p and _alive(p) and must_contain in _cmdline(p)]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.02)
        if not pids:
            break
    if pids:
        raise RegistryError("processes %s did not exit" % pids)


def _await_reaping(pids, timeout=2.5):
    """Give dead processes' parent (init, after a CLI start) time to reap them.

    An exited process stays a zombie until its parent reaps it, and `pgrep`
    and `kill -0` still see it meanwhile (this machine's init reaps about
    every 1.5 s). Cosmetic, so it gives up quietly.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(p and os.path.exists("/proc/%d" % p) for p in pids):
            return
        time.sleep(0.02)


def _start_token_issuer(d, info, ttl, leeway, tls):
    """Start token_server.py for DIR; returns its URL once it listens."""
    ensure = token_server.ensure_signing_cert(d, ISSUER)
    port_file = os.path.join(d, "token.json")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(port_file)
    cmd = [sys.executable, os.path.join(HERE, "token_server.py"), "--dir", d,
           "--key", ensure[0], "--cert", ensure[1], "--port", "0", "--port-file", port_file,
           "--user", info["username"], "--password", info["password"],
           "--ttl", str(ttl), "--leeway", str(leeway),
           "--issuer", ISSUER, "--service", SERVICE]
    if tls:
        cmd += ["--tls-cert", tls["server_cert"], "--tls-key", tls["server_key"]]
    p = _spawn(cmd, os.path.join(d, "token.log"))
    info["token_pid"] = p.pid
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                return json.load(f)["url"]
        if p.poll() is not None:
            break
        time.sleep(0.02)
    raise RegistryError("token issuer did not start:\n" + _tail(os.path.join(d, "token.log")))


def _write_info(d, info):
    path = os.path.join(d, "info.json")
    with open(path + ".tmp", "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def read_info(d):
    """DIR/info.json as a dict, or None."""
    try:
        with open(os.path.join(d, "info.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def start(mode, dir, token_ttl=300, user=None, password=None, token_leeway=DISTRIBUTION_LEEWAY,
          ready_timeout=READY_TIMEOUT):
    """Start a registry in `mode` with its state in `dir`; returns the info dict."""
    if mode not in MODES:
        raise ValueError("mode must be one of %s, not %r" % (", ".join(MODES), mode))
    d = os.path.abspath(dir)
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    old = read_info(d)
    if old and old.get("pid") and _alive(old["pid"]) and d in _cmdline(old["pid"]):
        raise RegistryError("a registry from %s/info.json is still running (pid %d); stop it first"
                            % (d, old["pid"]))
    info = {"mode": mode, "host": None, "url": None, "pid": None, "dir": d, "ca": None,
            "client_cert": None, "client_key": None, "username": None, "password": None,
            "token_url": None, "token_pid": None, "cert_dir": None,
            "config": os.path.join(d, "config.yml"), "log": os.path.join(d, "registry.log")}
    if mode in AUTH_MODES:
        info["username"] = user or DEFAULT_USER
        info["password"] = password or "pw-" + secrets.token_hex(8)
    try:
        tls = None
        if mode in TLS_MODES:
            tls = make_tls_material(d, client=(mode == "mtls"))
            for k in ("ca", "client_cert", "client_key", "cert_dir"):
                info[k] = tls[k]
        if mode == "htpasswd":
            line = _run("htpasswd", "-Bbn", info["username"], info["password"]).strip()
            with open(os.path.join(d, "htpasswd"), "w") as f:
                f.write(line + "\n")
        if mode in TOKEN_MODES:
            info["token_url"] = _start_token_issuer(d, info, token_ttl, token_leeway, tls)
        _start_registry(d, mode, info, tls, ready_timeout)
    except BaseException:
        _stop_info(d, info)
        raise
    _write_info(d, info)
    return info


def _start_registry(d, mode, info, tls, ready_timeout):
    """Pick a port, write config.yml, start, wait for /v2/; retry on bind races."""
    ctx = _ssl_context(info["ca"], info["client_cert"], info["client_key"]) if tls else None
    scheme = "https" if tls else "http"
    log_path = info["log"]
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        with open(info["config"], "w") as f:
            f.write(config_yaml(d, port, mode, tls, info["token_url"]))
        with open(log_path, "ab") as log:
            log.write(b"--- start attempt %d on port %d\n" % (attempt, port))
        p = _spawn(["docker-registry", "serve", info["config"]], log_path)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and p.poll() is None:
            if _v2_answers(port, ctx):
                info.update(host="127.0.0.1:%d" % port, url="%s://127.0.0.1:%d" % (scheme, port),
                            pid=p.pid)
                return
            time.sleep(0.03)
        exited = p.poll() is not None
        _kill([p.pid], d)
        tail = _tail(log_path)
        if exited and "address already in use" in tail and attempt < START_ATTEMPTS:
            continue  # someone took the port between our probe and the bind
        why = "exited (%s)" % p.returncode if exited else "did not answer /v2/ in %gs" % ready_timeout
        raise RegistryError("docker-registry %s; %s:\n%s" % (why, log_path, tail))
    raise RegistryError("docker-registry could not bind a port in %d attempts" % START_ATTEMPTS)


def _stop_info(d, info):
    pids = [info.get("pid"), info.get("token_pid")]
    pids = [p for p in pids if p and _alive(p) and d in _cmdline(p)]
    _kill(pids, d)
    _await_reaping(pids)


def stop(dir):
    """Stop the registry and token issuer recorded in DIR/info.json. Idempotent."""
    d = os.path.abspath(dir)
    info = read_info(d)
    if info:
        _stop_info(d, info)


class Registry:
    """Context manager: `with Registry("tls") as info:` ... stopped on exit.

    With dir=None a temp directory is made and removed afterwards.
    """

    def __init__(self, mode, dir=None, **kw):
        self.mode, self.dir, self.kw = mode, dir, kw
        self._tmp = None
        self.info = None

    def __enter__(self):
        if self.dir is None:
            self._tmp = self.dir = tempfile.mkdtemp(prefix="fl-registry-")
        try:
            self.info = start(self.mode, self.dir, **self.kw)
        except BaseException:
            self._cleanup()
            raise
        return self.info

    def _cleanup(self):
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __exit__(self, *exc):
        try:
            stop(self.dir)
        finally:
            self._cleanup()
        return False


running = Registry  # alias: `with registry.running("plain") as info:`


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start a registry, print its JSON info")
    s.add_argument("--mode", required=True, choices=MODES)
    s.add_argument("--dir", required=True)
    s.add_argument("--token-ttl", type=int, default=300, help="token lifetime (s), token modes")
    s.add_argument("--token-leeway", type=int, default=DISTRIBUTION_LEEWAY,
                   help="write JWT exp this much early to offset distribution's 60 s leeway "
                        "(0: honest exp, tokens then live ttl+60 s)")
    s.add_argument("--user", help="user for auth modes (default %s)" % DEFAULT_USER)
    s.add_argument("--password", help="password (default: random)")
    s.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT)
    t = sub.add_parser("stop", help="stop the registry of DIR (idempotent)")
    t.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            info = start(a.mode, a.dir, token_ttl=a.token_ttl, user=a.user, password=a.password,
                         token_leeway=a.token_leeway, ready_timeout=a.ready_timeout)
            print(json.dumps(info), flush=True)
        else:
            stop(a.dir)
    except (RegistryError, OSError, ValueError) as e:
        print("registry.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
