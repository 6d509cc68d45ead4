#!/usr/bin/env python3
"""A hostile registry on loopback: the server side of issue #18's cases.

It speaks enough of the Distribution API for Freightliner to list, pull and
push, and then misbehaves on purpose: pagination Links to another origin or
back to the same page, endless or gigantic tag lists, an index naming one
big manifest 20,000 times, 20,000 distinct children, deep or wide nesting,
43,000-layer manifests whose first blob fails, oversize bearer tokens,
upload Locations on another origin, tags with control characters or `@`.

Every listener records each request it gets (method, path, Authorization),
so a test can assert what reached it; a `Listener` with no routes of its
own is the "other origin" (the thief) that must receive no credentials.

As a module (the e2e scenarios use it in-process, one per scenario):

    thief = Listener()                       # records, answers 404/201
    reg = Hostile(auth="basic", thief=thief)  # user "u", password "p"
    reg.tag_lists["steal"] = reg.link_to_thief("tags")
    ... run freightliner against reg.host ...
    assert not thief.requests()
    reg.stop(); thief.stop()

As a program, for trying a case by hand:

    hostile.py [--auth none|basic|bearer] [--case NAME ...]

prints the registry's and the thief's host and serves until interrupted.
Binds 127.0.0.1 only. Only the standard library is used.
"""
import argparse
import base64
import hashlib
import http.server
import json
import re
import socketserver
import ssl
import threading
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

USER, PASSWORD = "u", "p"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes

    def log_message(self, fmt, *args):  # noqa: A003 - quiet
        pass

    def _dispatch(self):
        self.server.owner._handle(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class Request:
    """One request as a listener saw it."""

    def __init__(self, method, path, headers, body_len):
        self.method, self.path = method, path
        self.authorization = headers.get("Authorization")
        self.headers = dict(headers.items())
        self.body_len = body_len

    def __repr__(self):
        return "%s %s%s" % (self.method, self.path,
                            " [Authorization]" if self.authorization else "")


class Listener:
    """A loopback HTTP server that records every request. Without routes of
    its own it is the other origin: catalog and tag pages with one "stolen"
    entry (as if it were happy to be paged into), 201 for uploads, 404 else."""

    def __init__(self, tls=None):
        """tls: (certificate, key) files to serve HTTPS with."""
        self._lock = threading.Lock()
        self._requests = []
        self.served = {}  # path -> bytes this listener serves to anyone
        self.srv = _Server(("127.0.0.1", 0), _Handler)
        self.srv.owner = self
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.url = ("https://" if tls else "http://") + self.host
        self._thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def requests(self, method=None, pattern=None):
        with self._lock:
            out = list(self._requests)
        return [r for r in out if (method is None or r.method == method) and
                (pattern is None or re.search(pattern, r.path))]

    def with_authorization(self):
        return [r for r in self.requests() if r.authorization]

    # --- plumbing ---
    def _read_body(self, h):
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            n = 0
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    h.rfile.readline()
                    return n
                h.rfile.read(size)
                h.rfile.readline()
                n += size
        length = int(h.headers.get("Content-Length") or 0)
        left = length
        while left > 0:
            chunk = h.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        return length

    def _handle(self, h):
        n = self._read_body(h) if h.command in ("POST", "PUT", "PATCH") else 0
        with self._lock:
            self._requests.append(Request(h.command, h.path, h.headers, n))
        try:
            self.route(h)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def send(h, status, body=b"", headers=None, ctype="application/json"):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if body is not None:
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and h.command != "HEAD":
            h.wfile.write(body)

    def route(self, h):
        path = urllib.parse.urlsplit(h.path).path
        if h.command in ("GET", "HEAD") and path in self.served:
            return self.send(h, 200, self.served[path], ctype="application/octet-stream")
        if h.command == "GET" and path.endswith("/tags/list"):
            return self.send(h, 200, dumps({"name": "x", "tags": ["stolen"]}))
        if h.command == "GET" and path.endswith("/_catalog"):
            return self.send(h, 200, dumps({"repositories": ["stolen"]}))
        if h.command in ("PUT", "PATCH", "POST"):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
            hd = {"Location": path}
            if "digest" in q:
                hd["Docker-Content-Digest"] = q["digest"][0]
            return self.send(h, 201 if h.command == "PUT" else 202, b"", hd)
        return self.send(h, 404, dumps({"errors": [{"code": "NOT_FOUND"}]}))


class Hostile(Listener):
    """The hostile registry. auth: "none", "basic" (u/p) or "bearer" (a
    token service at `realm`, by default its own /token; Basic u/p there).

    Content (all settable by the test before the run):
      catalog          callable(query dict) -> (names, link or None)
      tag_lists[repo]  callable(query dict) -> (tags, link or None)
      manifests[(repo, ref)] and manifests[digest] = (media type, bytes)
      blobs[digest] = bytes; blob_status[digest] = HTTP status to answer
      blob_delay       seconds before answering a blob GET
      blob_redirect    callable(digest) -> URL: answer blob requests 307 there
      upload_location  callable(repo, n) -> Location of an upload session
    """

    def __init__(self, auth="none", thief=None, token_size=64, realm=None, tls=None):
        self.auth = auth
        self.thief = thief
        self.token = "tok-" + "A" * max(0, token_size - 4)
        self.catalog = lambda q: ([], None)
        self.tag_lists = {}
        self.manifests = {}
        self.blobs = {}
        self.blob_status = {}
        self.blob_delay = 0.0
        self.blob_redirect = None  # callable(digest) -> URL to redirect to, or None
        self.uploads = 0
        self.upload_location = None
        super().__init__(tls)
        self.realm = realm or self.url + "/token"

    # --- content helpers ---
    def add_blob(self, data):
        d = sha256(data)
        self.blobs[d] = data
        return {"mediaType": OCI_LAYER, "digest": d, "size": len(data)}

    def add_manifest(self, obj_or_bytes, media_type, repo=None, tag=None):
        data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else dumps(obj_or_bytes)
        d = sha256(data)
        self.manifests[d] = (media_type, data)
        if tag:
            self.manifests[(repo, tag)] = (media_type, data)
        return {"mediaType": media_type, "digest": d, "size": len(data)}

    def config_blob(self):
        cfg = self.add_blob(dumps({"architecture": "amd64", "os": "linux",
                                   "rootfs": {"type": "layers", "diff_ids": []}}))
        cfg["mediaType"] = OCI_CONFIG
        return cfg

    def link_to(self, url):
        """A listing whose first page names one entry and links to `url`."""
        return lambda q: (["first"], url)

    def self_link(self):
        """A listing whose next page is the very page asked for."""
        return lambda q: (["a", "b"], q["__path__"][0])

    def endless(self, path, per_page=1000):
        """A new page every time (last=N), per_page fresh entries each."""
        def page(q):
            n = int(q.get("last", ["0"])[0] or 0)
            return (["p%d-%d" % (n, i) for i in range(per_page)],
                    "%s?n=%d&last=%d" % (path, per_page, n + 1))
        return page

    def one_page(self, entries, key="tags"):
        """Every entry in one page (a registry ignoring n=)."""
        body = dumps({"name": "x", key: entries})
        return lambda q: (body, None)

    # --- auth ---
    def _authorized(self, h):
        got = h.headers.get("Authorization")
        if self.auth == "none":
            return True
        if self.auth == "basic":
            want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
            if got == want:
                return True
            self.send(h, 401, dumps({"errors": [{"code": "UNAUTHORIZED"}]}),
                      {"WWW-Authenticate": 'Basic realm="hostile"'})
            return False
        if got == "Bearer " + self.token:
            return True
        self.send(h, 401, dumps({"errors": [{"code": "UNAUTHORIZED"}]}),
                  {"WWW-Authenticate": 'Bearer realm="%s",service="hostile"' % self.realm})
        return False

    # --- routes ---
    def route(self, h):
        u = urllib.parse.urlsplit(h.path)
        path, q = u.path, urllib.parse.parse_qs(u.query)
        q["__path__"] = [h.path]
        if path == "/token":
            return self.send(h, 200, dumps({"token": self.token, "expires_in": 300}))
        if not path.startswith("/v2/"):
            return super().route(h)
        if not self._authorized(h):
            return None
        if path == "/v2/":
            return self.send(h, 200, b"{}")
        if path == "/v2/_catalog":
            return self._list(h, self.catalog(q), "repositories")
        m = re.match(r"^/v2/(.+)/tags/list$", path)
        if m:
            fn = self.tag_lists.get(m.group(1))
            if not fn:
                return self.send(h, 404, dumps({"errors": [{"code": "NAME_UNKNOWN"}]}))
            return self._list(h, fn(q), "tags")
        m = re.match(r"^/v2/(.+)/manifests/([^/]+)$", path)
        if m:
            return self._manifest(h, m.group(1), m.group(2))
        m = re.match(r"^/v2/(.+)/blobs/uploads/(.*)$", path)
        if m:
            return self._upload(h, m.group(1), m.group(2), q)
        m = re.match(r"^/v2/(.+)/blobs/([^/]+)$", path)
        if m:
            return self._blob(h, m.group(2))
        return self.send(h, 404, dumps({"errors": [{"code": "NOT_FOUND"}]}))

    def _list(self, h, page, key):
        entries, link = page
        body = entries if isinstance(entries, bytes) else dumps({"name": "x", key: entries})
        hd = {"Link": '<%s>; rel="next"' % link} if link else {}
        return self.send(h, 200, body, hd)

    def _manifest(self, h, repo, ref):
        if h.command == "PUT":
            return self.send(h, 201, b"", {"Location": h.path})
        got = self.manifests.get(ref if ref.startswith("sha256:") else (repo, ref))
        if not got:
            return self.send(h, 404, dumps({"errors": [{"code": "MANIFEST_UNKNOWN"}]}))
        mt, data = got
        return self.send(h, 200, data, {"Docker-Content-Digest": sha256(data)}, ctype=mt)

    def _blob(self, h, digest):
        if h.command == "DELETE":
            return self.send(h, 202, b"")
        to = self.blob_redirect(digest) if self.blob_redirect else None
        if to:
            return self.send(h, 307, b"", {"Location": to})
        status = self.blob_status.get(digest)
        if status:
            return self.send(h, status, dumps({"errors": [{"code": "BLOB_UNKNOWN"}]}))
        if self.blob_delay and h.command == "GET":
            time.sleep(self.blob_delay)
        data = self.blobs.get(digest)
        if data is None:
            return self.send(h, 404, dumps({"errors": [{"code": "BLOB_UNKNOWN"}]}))
        return self.send(h, 200, data, {"Docker-Content-Digest": digest},
                         ctype="application/octet-stream")

    def _upload(self, h, repo, rest, q):
        if h.command == "POST":
            if "mount" in q:  # no blob is ever here: open a session instead
                pass
            with self._lock:
                self.uploads += 1
                n = self.uploads
            loc = (self.upload_location(repo, n) if self.upload_location
                   else "/v2/%s/blobs/uploads/s%d" % (repo, n))
            return self.send(h, 202, b"", {"Location": loc, "Range": "0-0"})
        if h.command == "PUT":
            return self.send(h, 201, b"", {"Docker-Content-Digest": q.get("digest", [""])[0]})
        if h.command == "PATCH":
            return self.send(h, 202, b"", {"Location": h.path})
        return self.send(h, 204, b"")


# ---------------------------------------------------------------------------
# ready-made cases (each returns what a test needs to know)
# ---------------------------------------------------------------------------
def index_of(children):
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}


def image_of(config, layers):
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}


def case_fanout(reg, repo="fanout", tag="v1", children=20000, layers=25000):
    """One ~3.8 MB manifest (25,000 layers naming one small blob) named
    `children` times by a ~3 MB index. Returns the child's digest."""
    layer = reg.add_blob(b"layer")
    big = reg.add_manifest(image_of(reg.config_blob(), [layer] * layers), OCI_MANIFEST)
    child = dict(big, platform={"architecture": "amd64", "os": "linux"})
    reg.add_manifest(index_of([child] * children), OCI_INDEX, repo, tag)
    return big["digest"]


def case_wide(reg, repo="wide", tag="v1", children=20000):
    """An index of `children` distinct small manifests."""
    cfg = reg.config_blob()
    kids = []
    for i in range(children):
        m = image_of(cfg, [])
        m["annotations"] = {"n": str(i)}
        kids.append(reg.add_manifest(m, OCI_MANIFEST))
    reg.add_manifest(index_of(kids), OCI_INDEX, repo, tag)
    return [k["digest"] for k in kids]


def case_chain(reg, repo="chain", tag="v1", depth=8):
    """Indexes nested `depth` deep around one image."""
    d = reg.add_manifest(image_of(reg.config_blob(), [reg.add_blob(b"x")]), OCI_MANIFEST)
    for i in range(depth):
        idx = index_of([d])
        idx["annotations"] = {"level": str(i)}
        d = reg.add_manifest(idx, OCI_INDEX, repo, tag if i == depth - 1 else None)
    return d


def case_tree(reg, repo="tree", tag="v1", width=30, levels=3):
    """An index `levels` deep below the root, `width` distinct children at
    every level: width**levels leaves (30, 3: 27,000 leaves, 27,931 in all)."""
    cfg = reg.config_blob()

    def build(level, path):
        if level == levels:
            m = image_of(cfg, [])
            m["annotations"] = {"p": path}
            return reg.add_manifest(m, OCI_MANIFEST)
        idx = index_of([build(level + 1, "%s.%d" % (path, i)) for i in range(width)])
        idx["annotations"] = {"p": path}
        return reg.add_manifest(idx, OCI_INDEX)
    root = build(0, "r")
    reg.manifests[(repo, tag)] = reg.manifests[root["digest"]]
    return root["digest"]


def case_layers(reg, repo="layers", tag="v1", layers=43000):
    """A manifest of `layers` distinct 1-byte... layers, small enough for the
    4 MiB manifest limit (descriptors without mediaType); the first layer's
    blob answers 404, the others are served. Returns the layer digests."""
    digests = []
    for i in range(layers):
        data = b"%d" % i
        d = sha256(data)
        reg.blobs[d] = data
        digests.append({"digest": d, "size": len(data)})
    reg.blob_status[digests[0]["digest"]] = 404
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": reg.config_blob(),
         "layers": digests}
    reg.add_manifest(m, OCI_MANIFEST, repo, tag)
    return [x["digest"] for x in digests]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--auth", default="none", choices=("none", "basic", "bearer"))
    ap.add_argument("--case", action="append", default=[],
                    choices=("steal", "loop", "endless", "huge", "fanout", "wide", "chain",
                             "tree", "layers"))
    a = ap.parse_args()
    thief = Listener()
    reg = Hostile(auth=a.auth, thief=thief)
    for c in a.case:
        if c == "steal":
            reg.tag_lists["steal"] = reg.link_to(thief.url + "/v2/steal/tags/list?n=1")
            reg.catalog = reg.link_to(thief.url + "/v2/_catalog?n=1")
        elif c == "loop":
            reg.tag_lists["loop"] = reg.self_link()
        elif c == "endless":
            reg.tag_lists["endless"] = reg.endless("/v2/endless/tags/list")
        elif c == "huge":
            reg.tag_lists["huge"] = reg.one_page(["t%07d" % i for i in range(1000000)])
        else:
            globals()["case_" + c](reg)
    print(json.dumps({"host": reg.host, "thief": thief.host, "user": USER, "password": PASSWORD}),
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
