#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for the end-to-end tests.

It listens on a loopback port and forwards every request to one upstream
(a registry started by registry.py), streaming bodies both ways in small
pieces (a blob is never held whole), keeping connections alive on both
sides and speaking chunked transfer coding where the peer does. On chosen
or seeded-random requests it injects a fault instead of (or while)
forwarding.

Rules (a JSON list in --rules FILE, or --rule JSON, repeatable) are tried in
order; the first that matches and fires decides the request's fault (so a
rule counts, for nth/every/probability, only the requests that no earlier
rule took):

  {"method": "GET" | ["GET", "HEAD"] | "*",      default "*"
   "path": "regex",                              re.search on the path+query, default any
   "probability": 0.2,                           seeded (--seed) random, or
   "nth": 3 | [1, 4],                            the nth matching request(s), 1-based, or
   "every": 5,                                   every 5th matching request
   "max": 3,                                     at most this many injections by the rule
   "action": ...,  and the action's parameters}

Actions:
  status      answer "status" (500, 502, 503, ...) without forwarding
  rate_limit  answer 429 with Retry-After: "retry_after" (1) without forwarding
  drop        close the connection without answering
  stall       wait "seconds" (2), then forward; with "after_bytes" the
              response's first N body bytes are sent, then the stall
  close       forward, send the headers and "after_bytes" (default: half the
              body) body bytes, then close the connection (mid-body)
  truncate    forward, keep the full Content-Length, send "fraction" (0.5) of
              the body (or "keep_bytes"), then close
  headers     forward, and add "headers" ({"name": "value"}) to the answer
              (Docker Hub's ratelimit-remaining, for example)
  flip        forward, XOR one byte of the response body (at "offset", or a
              seeded-random offset) with 0xff; only for bodies with a length
  cut_request a request body cut mid-way, as a client's connection lost in
              the middle of an upload. Reads "after_bytes" (default: half
              the body) of the request body from the client, then closes the
              client connection abortively, without an answer. By default
              NOTHING of that request reaches the upstream: this is what a
              request-buffering reverse proxy (nginx's default
              proxy_request_buffering on, as in front of Harbor) does with an
              upload cut short, so the registry's upload session stays at the
              last acknowledged chunk. With "forward": true the request head
              and those first bytes are forwarded as they arrive (a
              non-buffering proxy), then the upstream connection is closed
              too, so the registry sees a body cut short.

A rule matches nothing it cannot apply to: close/truncate/flip only fire on
responses that have a body (GET with status 200/206 and at least 2 bytes);
cut_request only on requests that have a body (it is not counted for others,
so {"method": "PATCH", "nth": 2, "action": "cut_request"} is the 2nd PATCH
with a body).

Every injected fault is appended as one JSON line to --log (ts, rule,
action, method, path, status, detail); --access-log records every request
(ts, method, path, status, bytes of response body sent, request_bytes of
request body received, range and content_range: the request's Range and
Content-Range headers when it has them, fault, seconds).
`Location` and `Link` headers that point at the upstream are rewritten to
point at the proxy; the upstream sees its own Host.

CLI:  faultproxy.py --upstream http://127.0.0.1:PORT [--port 0] [--rules F]
                    [--rule JSON]... [--seed N] [--log F] [--access-log F]
                    [--info F]
      faultproxy.py --self-test
Once listening it prints one JSON line {host, url, port, pid, upstream}
(also written to --info). Python standard library only.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

PIECE = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"}
ACTIONS = {"status", "rate_limit", "drop", "stall", "close", "truncate", "flip", "cut_request", "headers"}
BODY_ACTIONS = {"close", "truncate", "flip"}


class ClientGone(Exception):
    """The client closed its side, or sent something that is not HTTP."""


class Rule:
    def __init__(self, spec, index):
        self.spec = spec
        self.index = index
        self.name = spec.get("name", "rule%d" % index)
        m = spec.get("method", "*")
        self.methods = None if m == "*" else {x.upper() for x in ([m] if isinstance(m, str) else m)}
        self.path = re.compile(spec["path"]) if spec.get("path") else None
        self.probability = spec.get("probability")
        nth = spec.get("nth")
        self.nth = None if nth is None else set([nth] if isinstance(nth, int) else nth)
        self.every = spec.get("every")
        self.max = spec.get("max")
        self.action = spec.get("action")
        if self.action not in ACTIONS:
            raise ValueError("rule %s: unknown action %r (one of %s)"
                             % (self.name, self.action, ", ".join(sorted(ACTIONS))))
        self.seen = 0
        self.fired = 0

    def matches(self, method, path, has_body=True):
        if self.methods is not None and method not in self.methods:
            return False
        if self.action == "cut_request" and not has_body:
            return False
        if self.path is not None and not self.path.search(path):
            return False
        return True

    def decide(self, rng):
        """Called (under the proxy lock) for a matching request."""
        self.seen += 1
        if self.max is not None and self.fired >= self.max:
            return False
        if self.nth is not None:
            fire = self.seen in self.nth
        elif self.every:
            fire = self.seen % self.every == 0
        elif self.probability is not None:
            fire = rng.random() < self.probability
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire


class FaultProxy:
    """The proxy server; serve_forever() on a thread, or run as a process."""

    def __init__(self, upstream, rules=(), seed=0, port=0, log=None, access_log=None):
        u = urllib.parse.urlparse(upstream)
        if u.scheme != "http":
            raise ValueError("upstream must be http://host:port")
        self.upstream = "http://" + u.netloc
        self.up_netloc = u.netloc
        self.rules = [Rule(r, i) for i, r in enumerate(rules)]
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.log_path, self.access_path = log, access_log
        self.faults = 0
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                proxy.serve_connection(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.host = "127.0.0.1:%d" % self.port

    # -- logging ---------------------------------------------------------
    def _append(self, path, rec):
        if not path:
            return
        line = json.dumps(rec, sort_keys=True) + "\n"
        with self.lock:
            with open(path, "a") as f:
                f.write(line)

    def record(self, rule, method, path, status, detail=None):
        with self.lock:
            self.faults += 1
        self._append(self.log_path, {"ts": round(time.time(), 3), "rule": rule.name,
                                     "action": rule.action, "method": method, "path": path,
                                     "status": status, "detail": detail or {}})

    # -- the fault decision ----------------------------------------------
    def choose(self, method, path, has_body=True):
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path, has_body) and rule.decide(self.rng):
                    return rule
        return None

    def rand(self, lo, hi):
        with self.lock:
            return self.rng.randint(lo, hi)

    # -- plumbing --------------------------------------------------------
    def rewrite(self, value):
        for prefix in (self.upstream, "//" + self.up_netloc):
            if prefix in value:
                value = value.replace(prefix, self.url if prefix.startswith("http") else "//" + self.host)
        return value

    def serve_connection(self, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = sock.makefile("rb", buffering=PIECE)
        up = None
        try:
            while True:
                keep, up = self.one_request(sock, rfile, up)
                if not keep:
                    break
        except (ClientGone, ConnectionError, socket.timeout, OSError):
            pass
        finally:
            if up is not None:
                up.close()
            try:
                rfile.close()
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def read_request_head(self, rfile):
        line = rfile.readline(65537)
        if not line:
            raise ClientGone()
        while line in (b"\r\n", b"\n"):  # tolerated between requests
            line = rfile.readline(65537)
            if not line:
                raise ClientGone()
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        except ValueError:
            raise ClientGone()  # TLS hello, garbage: not for us
        if not version.startswith("HTTP/1."):
            raise ClientGone()
        headers = http.client.parse_headers(rfile)
        return method.upper(), target, version, headers

    def body_reader(self, rfile, headers):
        """Yield the request body in pieces (de-chunked)."""
        te = headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while True:
                line = rfile.readline(1026)
                if not line:
                    raise ClientGone()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            return
                left = size
                while left:
                    data = rfile.read(min(PIECE, left))
                    if not data:
                        raise ClientGone()
                    left -= len(data)
                    yield data
                rfile.readline(3)
        else:
            left = int(headers.get("Content-Length", "0") or 0)
            while left:
                data = rfile.read(min(PIECE, left))
                if not data:
                    raise ClientGone()
                left -= len(data)
                yield data

    def answer(self, sock, status, reason, headers, body=b"", close=False):
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        lines.append("Content-Length: %d" % len(body))
        if close:
            lines.append("Connection: close")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def one_request(self, sock, rfile, up):
        method, target, version, headers = self.read_request_head(rfile)
        conn_tokens = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
        client_keep = (version == "HTTP/1.1" and "close" not in conn_tokens) or \
            (version == "HTTP/1.0" and "keep-alive" in conn_tokens)
        expect = headers.get("Expect", "").lower() == "100-continue"
        has_body = "Transfer-Encoding" in headers or int(headers.get("Content-Length", "0") or 0) > 0
        if expect:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        path = target
        if target.startswith("http://") or target.startswith("https://"):
            u = urllib.parse.urlparse(target)
            path = u.path + ("?" + u.query if u.query else "")
        t0 = time.time()
        rule = self.choose(method, path, has_body)
        access = {"ts": round(t0, 3), "method": method, "path": path}
        if headers.get("Range"):
            access["range"] = headers["Range"]
        if headers.get("Content-Range"):
            access["content_range"] = headers["Content-Range"]
        received = [0]  # request body bytes read from the client

        def request_body():
            for piece in self.body_reader(rfile, headers):
                received[0] += len(piece)
                yield piece

        def cut_done(length, forwarded):
            """Record a cut_request and break the client's connection."""
            self.record(rule, method, path, None, {"length": length, "received": received[0],
                                                   "forwarded": forwarded})
            access.update(status=None, fault="cut_request", request_bytes=received[0])
            self._append(self.access_path, access)
            self._abort(sock)

        # a request body cut short (buffering proxy: nothing goes upstream)
        cut_at = None
        if rule is not None and rule.action == "cut_request":
            length = headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            n = rule.spec.get("after_bytes")
            cut_at = int(n) if n is not None else (length // 2 if length else PIECE)
            if length is not None:
                cut_at = min(cut_at, max(length - 1, 0))
            if not rule.spec.get("forward"):
                for piece in request_body():
                    if received[0] >= cut_at:
                        break
                received[0] = min(received[0], cut_at)
                cut_done(length, 0)
                return False, up

        # faults that answer (or not) instead of forwarding
        if rule is not None and rule.action in ("status", "rate_limit", "drop"):
            for _ in request_body():
                pass
            if rule.action == "drop":
                self.record(rule, method, path, None)
                access.update(status=None, fault="drop", request_bytes=received[0])
                self._append(self.access_path, access)
                return False, up
            status = 429 if rule.action == "rate_limit" else int(rule.spec.get("status", 503))
            reason = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                      503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
            body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "injected fault %d" % status,
                                           "detail": None}]}).encode()
            extra = [("Content-Type", "application/json"),
                     ("Docker-Distribution-Api-Version", "registry/2.0")]
            if rule.action == "rate_limit":
                extra.append(("Retry-After", str(rule.spec.get("retry_after", 1))))
            self.answer(sock, status, reason, extra, body if method != "HEAD" else b"",
                        close=not client_keep)
            self.record(rule, method, path, status)
            access.update(status=status, fault=rule.action, request_bytes=received[0])
            self._append(self.access_path, access)
            return client_keep, up
        if rule is not None and rule.action == "stall" and rule.spec.get("after_bytes") is None:
            secs = float(rule.spec.get("seconds", 2))
            self.record(rule, method, path, None, {"seconds": secs})
            time.sleep(secs)
            rule = None  # then forward normally

        # forward the request
        if up is None:
            up = http.client.HTTPConnection(self.up_netloc, timeout=300)
        try:
            up.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            up.putheader("Host", self.up_netloc)
            chunked_up = False
            for k, v in headers.items():
                lk = k.lower()
                if lk in HOP_BY_HOP or lk in ("host", "expect"):
                    continue
                if lk == "content-length" and "Transfer-Encoding" in headers:
                    continue
                up.putheader(k, v)
            if "Transfer-Encoding" in headers:
                up.putheader("Transfer-Encoding", "chunked")
                chunked_up = True
            up.endheaders()
            if has_body:
                for piece in request_body():
                    if cut_at is not None and received[0] >= cut_at:
                        piece = piece[:len(piece) - (received[0] - cut_at)]
                        received[0] = cut_at
                    if chunked_up:
                        if piece:
                            up.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    else:
                        up.send(piece)
                    if cut_at is not None and received[0] >= cut_at:
                        break
                if cut_at is not None:  # forwarded a body cut short: break both sides
                    up.close()
                    cut_done(headers.get("Content-Length"), received[0])
                    return False, None
                if chunked_up:
                    up.send(b"0\r\n\r\n")
            resp = up.getresponse()
        except (http.client.HTTPException, OSError) as e:
            up.close()
            self.answer(sock, 502, "Bad Gateway", [("Content-Type", "text/plain")],
                        ("upstream: %s" % e).encode(), close=True)
            access.update(status=502, error=str(e), request_bytes=received[0])
            self._append(self.access_path, access)
            return False, None

        status = resp.status
        length = resp.getheader("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        body_allowed = method != "HEAD" and status not in (204, 304) and status >= 200
        chunked_down = body_allowed and length is None and resp.chunked
        # a body fault needs a body to break
        if rule is not None and rule.action in BODY_ACTIONS | {"stall"}:
            if not (body_allowed and method == "GET" and status in (200, 206) and
                    (length is None or length >= 2)):
                rule = None
            elif rule.action == "flip" and length is None:
                rule = None
        out = ["HTTP/1.1 %d %s" % (status, resp.reason)]
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP:
                continue
            if lk in ("location", "link", "content-location"):
                v = self.rewrite(v)
            out.append("%s: %s" % (k, v))
        if rule is not None and rule.action == "headers":
            out.extend("%s: %s" % kv for kv in sorted(rule.spec.get("headers", {}).items()))
            self.record(rule, method, path, status, rule.spec.get("headers"))
            rule = None
        upstream_close = resp.will_close and length is None and not resp.chunked
        keep = client_keep and not upstream_close
        if chunked_down:
            out.append("Transfer-Encoding: chunked")
        elif body_allowed and length is None:
            keep = False  # body delimited by close
        if not keep:
            out.append("Connection: close")
        sock.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))

        # how many body bytes to send before the fault acts
        cut = None
        flip_at = None
        stall_at = None
        if rule is not None:
            if rule.action == "close":
                n = rule.spec.get("after_bytes")
                cut = int(n) if n is not None else (length // 2 if length else PIECE)
                if length is not None:
                    cut = min(cut, length - 1)
            elif rule.action == "truncate":
                if rule.spec.get("keep_bytes") is not None:
                    cut = int(rule.spec["keep_bytes"])
                else:
                    frac = float(rule.spec.get("fraction", 0.5))
                    cut = int(length * frac) if length else PIECE
                if length is not None:
                    cut = min(cut, length - 1)
            elif rule.action == "flip":
                off = rule.spec.get("offset")
                flip_at = int(off) if off is not None else self.rand(0, length - 1)
                flip_at = min(flip_at, length - 1)
            elif rule.action == "stall":
                stall_at = int(rule.spec["after_bytes"])

        sent = 0
        aborted = False
        try:
            if body_allowed:
                while True:
                    piece = resp.read1(PIECE) if not resp.closed else b""
                    if not piece:
                        break
                    if cut is not None and sent + len(piece) >= cut:
                        piece = piece[:cut - sent]
                        self._send(sock, piece, chunked_down)
                        sent += len(piece)
                        aborted = True
                        break
                    if flip_at is not None and sent <= flip_at < sent + len(piece):
                        i = flip_at - sent
                        piece = piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1:]
                    if stall_at is not None and sent + len(piece) >= stall_at:
                        head = piece[:max(0, stall_at - sent)]
                        self._send(sock, head, chunked_down)
                        secs = float(rule.spec.get("seconds", 2))
                        self.record(rule, method, path, status, {"seconds": secs, "after_bytes": stall_at})
                        time.sleep(secs)
                        piece = piece[len(head):]
                        sent += len(head)
                        stall_at = None
                    self._send(sock, piece, chunked_down)
                    sent += len(piece)
                if not aborted and chunked_down:
                    sock.sendall(b"0\r\n\r\n")
                if not aborted:
                    resp.close()  # body consumed: the upstream connection is free again
            else:
                resp.read()
        except (http.client.HTTPException, OSError):
            up.close()
            up = None
            aborted = True
            keep = False
        if rule is not None and rule.action in BODY_ACTIONS:
            detail = {"length": length, "sent": sent}
            if flip_at is not None:
                detail["offset"] = flip_at
            self.record(rule, method, path, status, detail)
        access.update(status=status, bytes=sent, fault=rule.action if rule else None,
                      request_bytes=received[0], seconds=round(time.time() - t0, 3))
        self._append(self.access_path, access)
        if aborted:
            if up is not None:
                up.close()
            self._abort(sock)
            return False, None
        if resp.will_close and up is not None:
            up.close()
            up = None
        return keep, up

    @staticmethod
    def _abort(sock):
        """Make the coming close abortive (RST), as a broken network would."""
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass

    @staticmethod
    def _send(sock, piece, chunked):
        if not piece:
            return
        if chunked:
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        else:
            sock.sendall(piece)

    def serve_forever(self):
        self.server.serve_forever(poll_interval=0.2)

    def start_thread(self):
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return t

    def shutdown(self):
        self.server.shutdown()
        self.server.server_close()


def read_faults(path):
    """The JSON lines of a fault log (a list of dicts; [] if none)."""
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------
# self-test: a tiny upstream, the proxy in front, every action checked
# ---------------------------------------------------------------------------
def _self_test():
    import tempfile
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def blob(n):
        return bytes((i * 7 + 3) & 0xFF for i in range(n))

    uploads = []  # (method, path, bytes received) of every upload upstream

    class Up(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def reply(self, code, body, headers=()):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith("/blob/"):
                n = int(self.path.split("/")[2])
                rng = self.headers.get("Range")
                data = blob(n)
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    return self.reply(206, data[start:], [("Content-Range", "bytes %d-%d/%d" % (start, n - 1, n))])
                return self.reply(200, data)
            if self.path == "/chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (b"hello ", b"chunked ", b"world"):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
                return
            if self.path == "/redirect":
                return self.reply(202, b"", [("Location", "http://%s/v2/x/blobs/uploads/abc?_state=1"
                                              % self.headers["Host"])])
            if self.path == "/host":
                return self.reply(200, self.headers["Host"].encode())
            self.reply(404, b"no")

        do_HEAD = do_GET

        def do_PUT(self):
            data = self._body()
            uploads.append((self.command, self.path, len(data)))
            self.reply(201, ("%d %s" % (len(data), hashlib.sha256(data).hexdigest())).encode())

        do_PATCH = do_POST = do_PUT

    class UpServer(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # the proxy breaks connections on purpose

    upstream = UpServer(("127.0.0.1", 0), Up)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_url = "http://127.0.0.1:%d" % upstream.server_address[1]
    tmp = tempfile.mkdtemp(prefix="faultproxy-selftest-")
    log = os.path.join(tmp, "faults.jsonl")
    rules = [
        {"name": "s503", "method": "GET", "path": "^/blob/11$", "nth": 1, "action": "status", "status": 503},
        {"name": "s500put", "method": "PUT", "path": "^/fail500", "action": "status", "status": 500},
        {"name": "r429", "path": "^/blob/12$", "nth": [1], "action": "rate_limit"},
        {"name": "close", "path": "^/blob/100000$", "nth": 1, "action": "close", "after_bytes": 1000},
        {"name": "trunc", "path": "^/blob/50000$", "nth": 1, "action": "truncate"},
        {"name": "flip", "path": "^/blob/70000$", "action": "flip", "offset": 12345},
        {"name": "stall", "path": "^/blob/13$", "action": "stall", "seconds": 1},
        {"name": "stallmid", "path": "^/blob/200000$", "action": "stall", "seconds": 0.5,
         "after_bytes": 100000},
        {"name": "drop", "path": "^/blob/14$", "nth": 1, "action": "drop"},
        {"name": "prob", "path": "^/blob/15$", "probability": 0.5, "action": "status", "status": 502},
        {"name": "every", "path": "^/blob/16$", "every": 3, "max": 2, "action": "status", "status": 500},
        {"name": "cut", "method": "PATCH", "path": "^/cut$", "nth": 2, "action": "cut_request",
         "after_bytes": 100000},
        {"name": "cutfwd", "method": "PATCH", "path": "^/cutfwd$", "nth": 1, "action": "cut_request",
         "after_bytes": 150000, "forward": True},
    ]
    p = FaultProxy(up_url, rules, seed=7, log=log)
    p.start_thread()
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    def conn():
        return http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)

    try:
        c = conn()
        c.request("GET", "/blob/1000")
        r = c.getresponse()
        body = r.read()
        check(r.status == 200 and body == blob(1000), "passthrough with Content-Length")
        first_sock = c.sock
        c.request("GET", "/blob/300000")
        r = c.getresponse()
        body = r.read()
        check(body == blob(300000) and c.sock is first_sock, "keep-alive: second request on the same connection")
        c.request("GET", "/chunked")
        r = c.getresponse()
        check(r.chunked and r.read() == b"hello chunked world", "chunked response passthrough")
        c.request("HEAD", "/blob/1000")
        r = c.getresponse()
        r.read()
        check(r.status == 200 and r.getheader("Content-Length") == "1000", "HEAD keeps Content-Length, no body")
        data = blob(200000)
        c.request("PUT", "/upload", body=iter([data[:70000], data[70000:]]), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        check(r.read().decode() == "200000 " + hashlib.sha256(data).hexdigest(), "chunked request body streamed")
        c.request("PATCH", "/upload", body=data, headers={"Expect": "100-continue"})
        r = c.getresponse()
        check(r.read().decode() == "200000 " + hashlib.sha256(data).hexdigest(), "Expect: 100-continue upload")
        c.request("GET", "/redirect")
        r = c.getresponse()
        r.read()
        check(r.getheader("Location") == "http://%s/v2/x/blobs/uploads/abc?_state=1" % p.host,
              "Location rewritten to the proxy")
        c.request("GET", "/host")
        r = c.getresponse()
        check(r.read().decode() == urllib.parse.urlparse(up_url).netloc, "upstream sees its own Host")
        c.request("GET", "/blob/11")
        r = c.getresponse()
        r.read()
        check(r.status == 503, "status 503 on the 1st request")
        c.request("GET", "/blob/11")
        r = c.getresponse()
        check(r.status == 200 and r.read() == blob(11), "then passes (nth), same connection")
        c.request("PUT", "/fail500", body=data)
        r = c.getresponse()
        r.read()
        c.request("GET", "/blob/10")
        r2 = c.getresponse()
        check(r.status == 500 and r2.read() == blob(10), "500 on an upload, body drained, connection usable")
        c.request("GET", "/blob/12")
        r = c.getresponse()
        r.read()
        check(r.status == 429 and r.getheader("Retry-After") == "1", "429 with Retry-After: 1")
        c.request("GET", "/blob/100000")
        r = c.getresponse()
        got = b""
        try:
            got = r.read()
            closed_early = False
        except http.client.IncompleteRead as e:
            got = e.partial
            closed_early = True
        check(closed_early and len(got) == 1000 and got == blob(1000),
              "close mid-body after 1000 bytes")
        c.close()
        c = conn()
        c.request("GET", "/blob/50000")
        r = c.getresponse()
        try:
            r.read()
            truncated = False
        except http.client.IncompleteRead as e:
            truncated = len(e.partial) == 25000
        check(r.getheader("Content-Length") == "50000" and truncated, "truncate: full Content-Length, half the body")
        c.close()
        c = conn()
        c.request("GET", "/blob/70000")
        r = c.getresponse()
        got = r.read()
        want = blob(70000)
        diff = [i for i in range(len(got)) if got[i] != want[i]]
        check(len(got) == 70000 and diff == [12345], "flip: exactly one byte at offset 12345")
        t = time.time()
        c.request("GET", "/blob/13")
        r = c.getresponse()
        ok = r.read() == blob(13)
        check(ok and time.time() - t >= 0.95, "stall 1 s, then the response")
        t = time.time()
        c.request("GET", "/blob/200000")
        r = c.getresponse()
        ok = r.read() == blob(200000)
        check(ok and time.time() - t >= 0.45, "stall mid-body, then the rest")
        c.request("GET", "/blob/14")
        try:
            c.getresponse().read()
            dropped = False
        except (http.client.RemoteDisconnected, ConnectionError):
            dropped = True
        check(dropped, "drop: connection closed without an answer")
        c.close()
        c = conn()
        statuses = []
        for _ in range(40):
            c.request("GET", "/blob/15")
            r = c.getresponse()
            r.read()
            statuses.append(r.status)
        n502 = statuses.count(502)
        check(5 <= n502 <= 35, "probability 0.5: %d of 40 injected" % n502)
        ev = []
        for _ in range(9):
            c.request("GET", "/blob/16")
            r = c.getresponse()
            r.read()
            ev.append(r.status)
        check(ev == [200, 200, 500, 200, 200, 500, 200, 200, 200], "every 3rd, at most 2: %s" % ev)
        c.request("GET", "/blob/4000", headers={"Range": "bytes=1000-"})
        r = c.getresponse()
        check(r.status == 206 and r.read() == blob(4000)[1000:], "Range request passthrough")
        c.close()
        def patch_is_cut(c, path, body):
            """PATCH body on c (then closed); True if the proxy cut it."""
            c.request("PATCH", path, body=body)
            try:
                c.getresponse().read()
                return False
            except (http.client.HTTPException, ConnectionError):
                return True
            finally:
                c.close()

        # cut_request: a bodiless PATCH is not counted; the 1st PATCH with a
        # body passes, the 2nd is cut after 100000 bytes and never forwarded
        big = blob(400000)
        c = conn()
        c.request("PATCH", "/cut")
        r = c.getresponse()
        r.read()
        c.request("PATCH", "/cut", body=big, headers={"Content-Range": "0-399999"})
        r = c.getresponse()
        first = r.read().decode()
        cut = patch_is_cut(c, "/cut", big)
        time.sleep(0.2)
        check(first.startswith("400000 ") and cut and
              [u for u in uploads if u[1] == "/cut"] == [("PATCH", "/cut", 0), ("PATCH", "/cut", 400000)],
              "cut_request: the 2nd PATCH with a body is cut and nothing of it forwarded (%s)" % uploads)
        cut = patch_is_cut(conn(), "/cutfwd", big)
        deadline = time.time() + 5
        while time.time() < deadline and not [u for u in uploads if u[1] == "/cutfwd"]:
            time.sleep(0.05)
        check(cut and [u for u in uploads if u[1] == "/cutfwd"] == [("PATCH", "/cutfwd", 150000)],
              "cut_request forward: the upstream got the first 150000 bytes, then a closed connection (%s)"
              % uploads)
        faults = read_faults(log)
        by = {}
        for f in faults:
            by[f["rule"]] = by.get(f["rule"], 0) + 1
        check(by.get("s503") == 1 and by.get("r429") == 1 and by.get("close") == 1 and
              by.get("trunc") == 1 and by.get("flip") == 1 and by.get("stall") == 1 and
              by.get("drop") == 1 and by.get("every") == 2 and by.get("prob") == n502 and
              by.get("s500put") == 1 and by.get("stallmid") == 1 and by.get("cut") == 1 and
              by.get("cutfwd") == 1,
              "fault log counts every injection: %s" % by)
        # determinism: the same seed makes the same decisions
        q = FaultProxy(up_url, [{"path": "^/blob/15$", "probability": 0.5, "action": "status",
                                 "status": 502}], seed=7)
        q.start_thread()
        c = http.client.HTTPConnection("127.0.0.1", q.port, timeout=10)
        again = []
        for _ in range(40):
            c.request("GET", "/blob/15")
            r = c.getresponse()
            r.read()
            again.append(r.status)
        c.close()
        q.shutdown()
        check(again == statuses, "seeded decisions repeat")
    finally:
        p.shutdown()
        upstream.shutdown()
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)
    print("faultproxy self-test: %d failed" % len(failures))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", help="http://host:port of the registry")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rules", help="a JSON file with a list of rules")
    ap.add_argument("--rule", action="append", default=[], help="one rule as JSON (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", help="JSON lines, one per injected fault")
    ap.add_argument("--access-log", help="JSON lines, one per request")
    ap.add_argument("--info", help="write the start-up JSON here too")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(_self_test())
    if not a.upstream:
        ap.error("--upstream is required")
    rules = []
    if a.rules:
        with open(a.rules) as f:
            rules += json.load(f)
    rules += [json.loads(r) for r in a.rule]
    p = FaultProxy(a.upstream, rules, a.seed, a.port, a.log, a.access_log)
    info = {"host": p.host, "url": p.url, "port": p.port, "pid": os.getpid(), "upstream": p.upstream}
    if a.info:
        tmp = a.info + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.rename(tmp, a.info)
    print(json.dumps(info), flush=True)
    try:
        p.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
