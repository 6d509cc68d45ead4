#!/usr/bin/env python3
"""Docker registry token issuer for the harness's `token` registry modes.

A small threaded HTTP(S) server on a loopback port implementing the token
protocol that the Distribution registry's `auth: token` mode relies on:

  GET  /token?service=S&scope=repository:NAME:pull,push&scope=...&account=U
       Basic credentials are checked against --user/--password. Valid ones
       get every action they ask for; a request without credentials gets a
       token with an EMPTY access list (so the registry refuses it with
       401/denied); wrong credentials get 401. `offline_token=true` adds a
       refresh_token.
  POST /token  (OAuth2 form) grant_type=password (username, password) or
       grant_type=refresh_token (refresh_token); scope is space separated;
       access_type=offline adds a refresh_token.

Rotation: while a file DIR/rotated-password exists, its content (one line)
is the only password accepted, in place of --password: a test writes it
mid-run to rotate the credential.

Answers {"token", "access_token", "expires_in", "issued_at"} (+
"refresh_token"). Tokens are RS256 JWTs signed by `openssl dgst -sha256
-sign` with a key generated at start; the JWT header carries `x5c` (the
self-signed signing certificate, base64 DER), which the registry verifies
against `rootcertbundle` (token.crt), and `kid` (the libtrust key id) too.

Distribution 2.8 accepts a token until exp + 60 s (and from nbf - 60 s), its
clock-skew leeway. With --leeway 60 the `exp` claim is written 60 s early so
that the registry really refuses a token --ttl seconds after it was issued;
with --leeway 0 `exp` is honest (iat + ttl) and the registry honours it for
another minute. `expires_in` is always --ttl.

Run by registry.py; standalone:
  token_server.py --dir DIR --user U --password P [--ttl 300] [--leeway 0]
                  [--port 0] [--port-file F] [--tls-cert C --tls-key K]
Once listening it writes {"port", "pid", "url"} to --port-file (default
DIR/token.json), atomically.
"""
import argparse
import base64
import hashlib
import json
import math
import os
import secrets
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ISSUER = "freightliner-test-issuer"
DEFAULT_SERVICE = "freightliner-test"


def b64url(data):
    """base64url without padding, as JWS wants."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ensure_signing_cert(d, issuer=DEFAULT_ISSUER):
    """Make DIR/token.key (RSA 2048) and the self-signed DIR/token.crt.

    Returns (key_path, cert_path). Existing files are kept, so registry.py
    can create them before the registry config that names token.crt.
    """
    key, crt = os.path.join(d, "token.key"), os.path.join(d, "token.crt")
    if not (os.path.exists(key) and os.path.exists(crt)):
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", key, "-days", "30",
                        "-subj", "/CN=" + issuer, "-out", crt + ".tmp"],
                       check=True, capture_output=True)
        os.replace(crt + ".tmp", crt)
    return key, crt


def pem_to_der(pem_text):
    """The DER bytes of the first PEM block (a PEM body is base64 of DER)."""
    lines = pem_text.strip().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("-----BEGIN"))
    end = next(i for i, l in enumerate(lines) if l.startswith("-----END"))
    return base64.b64decode("".join(lines[start + 1:end]))


def libtrust_kid(der_spki):
    """libtrust's key id: base32 of the first 240 bits of sha256(SPKI), 4-char groups."""
    s = base64.b32encode(hashlib.sha256(der_spki).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def parse_scope(scope):
    """'repository:host:5000/a/b:pull,push' -> (type, name, [actions]).

    The type ends at the first colon and the actions start after the last
    one, so names may hold colons (a registry host with a port).
    """
    typ, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not typ or not name:
        return None
    return typ, name, [a for a in actions.split(",") if a]


class Issuer:
    """Holds the signing key and the users, and mints JWTs."""

    def __init__(self, key, cert, user, password, ttl, leeway, issuer, service):
        self.key = key
        with open(cert) as f:
            der = pem_to_der(f.read())
        self.x5c = [base64.b64encode(der).decode()]
        spki = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                              check=True, capture_output=True).stdout
        self.kid = libtrust_kid(spki)
        self.user, self.password = user, password
        self.ttl, self.leeway = ttl, leeway
        self.issuer, self.service = issuer, service
        self.refresh = {}  # refresh token -> subject
        self.lock = threading.Lock()
        self.rotated_file = None

    def check(self, user, password):
        expected = self.password
        if self.rotated_file:
            try:
                with open(self.rotated_file) as f:
                    expected = f.read().strip()
            except FileNotFoundError:
                pass
        return bool(self.user) and user == self.user and password == expected

    def sign(self, signing_input):
        """RS256 = RSASSA-PKCS1-v1_5 over SHA-256, which is what dgst -sign does."""
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                              input=signing_input, check=True, capture_output=True).stdout

    def mint(self, service, scopes, subject):
        """A signed JWT for `subject` (None = anonymous: no access at all)."""
        now = time.time()
        access = []
        if subject:
            merged = {}  # (type, name) -> actions, in request order
            for scope in scopes:
                for part in scope.split():
                    parsed = parse_scope(part)
                    if parsed:
                        acts = merged.setdefault(parsed[:2], [])
                        acts.extend(a for a in parsed[2] if a not in acts)
            access = [{"type": t, "name": n, "actions": a} for (t, n), a in merged.items()]
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5c": self.x5c}
        claims = {"iss": self.issuer, "sub": subject or "", "aud": service or self.service,
                  # exp rounds up so that a token lives at least ttl seconds
                  "exp": math.ceil(now) + self.ttl - self.leeway,
                  "nbf": int(now), "iat": int(now),
                  "jti": secrets.token_hex(12), "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        return signing_input.decode() + "." + b64url(self.sign(signing_input))

    def new_refresh_token(self, subject):
        rt = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh[rt] = subject
        return rt

    def refresh_subject(self, rt):
        with self.lock:
            return self.refresh.get(rt)


def make_handler(issuer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive; every reply has a length
        server_version = "freightliner-token/1"

        def log_message(self, fmt, *args):
            # One short line per request to stderr (token.log); no secrets:
            # the query holds none, passwords travel in headers or bodies.
            sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

        def reply(self, code, body, extra_headers=()):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra_headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def unauthorized(self, why):
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": why}],
                             "error": "invalid_grant", "error_description": why},
                       [("WWW-Authenticate", 'Basic realm="%s"' % issuer.issuer)])

        def basic_credentials(self):
            """(user, password) from an Authorization: Basic header, or None."""
            h = self.headers.get("Authorization", "")
            if not h.lower().startswith("basic "):
                return None
            try:
                user, _, pw = base64.b64decode(h[6:].strip()).decode().partition(":")
            except Exception:
                return ("", "")
            return user, pw

        def grant(self, service, scopes, subject, offline, refresh_token=None):
            tok = issuer.mint(service, scopes, subject)
            body = {"token": tok, "access_token": tok, "expires_in": issuer.ttl,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if offline and subject:
                body["refresh_token"] = refresh_token or issuer.new_refresh_token(subject)
            self.reply(200, body)

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            if u.path != "/token":
                return self.reply(404, {"error": "not found"})
            q = urllib.parse.parse_qs(u.query)
            creds = self.basic_credentials()
            subject = None
            if creds is not None:
                if not issuer.check(*creds):
                    return self.unauthorized("invalid username or password")
                subject = creds[0]
            self.grant(q.get("service", [""])[0], q.get("scope", []), subject,
                       q.get("offline_token", [""])[0].lower() == "true")

        def do_POST(self):
            u = urllib.parse.urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n).decode("utf-8", "replace")
            if u.path != "/token":
                return self.reply(404, {"error": "not found"})
            form = urllib.parse.parse_qs(raw)
            field = lambda k: form.get(k, [""])[0]
            offline = field("access_type") == "offline"
            grant_type = field("grant_type")
            if grant_type == "password":
                if not issuer.check(field("username"), field("password")):
                    return self.unauthorized("invalid username or password")
                return self.grant(field("service"), form.get("scope", []), field("username"),
                                  offline)
            if grant_type == "refresh_token":
                rt = field("refresh_token")
                subject = issuer.refresh_subject(rt)
                if not subject:
                    return self.unauthorized("unknown refresh token")
                return self.grant(field("service"), form.get("scope", []), subject,
                                  offline, refresh_token=rt)
            self.reply(400, {"error": "unsupported_grant_type"})

    return Handler


def serve(args):
    """Bind (port 0 = any free one), publish the port, then serve forever."""
    d = os.path.abspath(args.dir)
    key, cert = (args.key, args.cert) if args.key else ensure_signing_cert(d, args.issuer)
    issuer = Issuer(key, cert, args.user, args.password, args.ttl, args.leeway,
                    args.issuer, args.service)
    issuer.rotated_file = os.path.join(d, "rotated-password")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(issuer))
    server.daemon_threads = True
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    port = server.server_address[1]
    info = {"port": port, "pid": os.getpid(), "url": "%s://127.0.0.1:%d/token" % (scheme, port)}
    port_file = args.port_file or os.path.join(d, "token.json")
    with open(port_file + ".tmp", "w") as f:
        json.dump(info, f)
    os.replace(port_file + ".tmp", port_file)
    sys.stderr.write("token issuer listening on %s\n" % info["url"])
    sys.stderr.flush()
    server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="holds token.key/token.crt (made if missing)")
    ap.add_argument("--key", help="signing key (default DIR/token.key)")
    ap.add_argument("--cert", help="signing certificate (default DIR/token.crt)")
    ap.add_argument("--port", type=int, default=0, help="0 = any free loopback port")
    ap.add_argument("--port-file", help="where to write {port,pid,url} (DIR/token.json)")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--ttl", type=int, default=300, help="token lifetime, seconds")
    ap.add_argument("--leeway", type=int, default=0,
                    help="write exp this many seconds early (60 offsets distribution's leeway)")
    ap.add_argument("--issuer", default=DEFAULT_ISSUER)
    ap.add_argument("--service", default=DEFAULT_SERVICE)
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    if bool(args.key) != bool(args.cert):
        ap.error("--key and --cert go together")
    try:
        serve(args)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
