#!/usr/bin/env python3
"""A small Docker registry token issuer, for the `token` registry mode.

Implements the token protocol the Distribution registry's `auth: token`
mode expects: GET /token?service=&scope=&account= with Basic credentials
(and POST /token OAuth2 forms: grant_type=password or refresh_token).
Valid credentials get every action asked for; anonymous requests get a
token with no access, so the registry refuses them. Tokens are RS256 JWTs
signed with a key generated at start (openssl does the signing); the
header's `kid` is the libtrust key id of the key, which the registry finds
in `rootcertbundle` (DIR/token.crt). Tokens live --ttl seconds, so tests
can watch one expire mid-run.
"""
import argparse
import base64
import hashlib
import json
import os
import secrets
import subprocess
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ISSUER = "freightliner-test-issuer"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(der_pub):
    s = base64.b32encode(hashlib.sha256(der_pub).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


class Issuer:
    def __init__(self, d, user, password, ttl):
        self.key = os.path.join(d, "token.key")
        crt = os.path.join(d, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-days", "2", "-subj", "/CN=freightliner token issuer",
                        "-keyout", self.key, "-out", crt + ".tmp"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "rsa", "-in", self.key, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.kid = libtrust_kid(der)
        os.rename(crt + ".tmp", crt)
        self.user, self.password, self.ttl = user, password, ttl
        self.refresh = {}

    def sign(self, data):
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                              input=data, check=True, capture_output=True).stdout

    def token(self, service, scopes, subject):
        now = int(time.time())
        access = []
        if subject:
            for scope in scopes:
                for part in scope.split(" "):
                    bits = part.split(":")
                    if len(bits) >= 3:
                        actions = bits[-1].split(",")
                        access.append({"type": bits[0], "name": ":".join(bits[1:-1]),
                                       "actions": actions})
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": ISSUER, "sub": subject or "", "aud": service, "exp": now + self.ttl,
                  "nbf": now - 5, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        return signing_input.decode() + "." + b64url(self.sign(signing_input))


def make_handler(issuer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def basic_user(self):
            h = self.headers.get("Authorization", "")
            if not h.lower().startswith("basic "):
                return None, False
            try:
                user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
            except Exception:
                return None, True
            ok = user == issuer.user and pw == issuer.password
            return (user if ok else None), True

        def grant(self, service, scopes, subject, offline=False):
            tok = issuer.token(service, scopes, subject)
            body = {"token": tok, "access_token": tok, "expires_in": issuer.ttl,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if offline and subject:
                rt = secrets.token_hex(16)
                issuer.refresh[rt] = subject
                body["refresh_token"] = rt
            self.reply(200, body)

        def do_GET(self):
            u = urllib.parse.urlparse(self.path)
            if u.path != "/token":
                return self.reply(404, {"error": "not found"})
            q = urllib.parse.parse_qs(u.query)
            user, tried = self.basic_user()
            if tried and not user:
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                    "message": "bad credentials"}]})
            self.grant(q.get("service", [""])[0], q.get("scope", []), user)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(n).decode())
            grant = form.get("grant_type", [""])[0]
            service = form.get("service", [""])[0]
            scopes = form.get("scope", [])
            if grant == "password":
                ok = (form.get("username", [""])[0] == issuer.user and
                      form.get("password", [""])[0] == issuer.password)
                if not ok:
                    return self.reply(401, {"error": "invalid_grant"})
                return self.grant(service, scopes, issuer.user,
                                  form.get("access_type", [""])[0] == "offline")
            if grant == "refresh_token":
                subject = issuer.refresh.get(form.get("refresh_token", [""])[0])
                if not subject:
                    return self.reply(401, {"error": "invalid_grant"})
                return self.grant(service, scopes, subject, True)
            self.reply(400, {"error": "unsupported_grant_type"})

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ttl", type=int, default=300)
    a = ap.parse_args()
    issuer = Issuer(a.dir, a.user, a.password, a.ttl)
    ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(issuer)).serve_forever()


if __name__ == "__main__":
    main()
