#!/usr/bin/env python3
"""Push generated, deterministic test images to a registry (Distribution HTTP API).

CLI:
  seed.py --registry URL [--ca F] [--cert F --key F] [--insecure]
          [--user U --password P] [--spec small|fleet|big|FILE.json]
          [--seed N] [--repos N] [--tags N] [--layer-size B] [--big-size B]
          [--jobs N] [--out FILE] [-v]

Everything is a pure function of --seed (default 1): layer payloads come from
random.Random("<seed>/<layer key>").randbytes (incompressible), timestamps
are fixed, JSON is serialised canonically, so the same seed gives the same
digests on every run and every registry.

Each layer is a real tar.gz: a ustar archive holding one file of the layer's
payload size, wrapped in gzip with *stored* (level 0) deflate blocks,
written here by hand so it is fast and byte-identical everywhere. Configs
are valid image configs whose rootfs.diff_ids are the sha256 of the
uncompressed tar.

Presets (--spec):
  small  project-a/app, project-a/web, project-b/tool x tags v1.0 v1.1 v2.0
         latest; each image 2 layers of --layer-size (64 KiB): a base layer
         shared by every image plus one of its own. Docker schema 2 and OCI
         media types alternate ((repo index + tag index) even = Docker, so
         project-a/app:v1.0 is Docker and :v1.1 OCI). An OCI index
         project-a/multi:v1 (linux/amd64, linux/arm64/v8, linux/arm/v7), a
         Docker manifest list project-b/dmulti:v1 (amd64, arm64/v8), and a
         cosign-style signature of project-a/app:v1.0 at tag
         sha256-<hex>.sig. Configs carry architecture, os, a created time
         per tag and config.Labels["org.opencontainers.image.version"] = tag.
  fleet  fleet/repo-00.. (--repos 16) x v1.0.. (--tags 4) x 3 layers of
         --layer-size (1 MiB), the first shared by all; Docker and OCI
         alternating; plus an OCI index fleet/multi:v1 (amd64, arm64/v8).
  big    big/layer:v1, one layer of --big-size (256 MiB) payload, streamed:
         a first pass computes its digests, the upload is POST, PATCHes of
         8 MiB, PUT ?digest=; it is never held in memory.
  FILE   a JSON spec, either {"preset": "fleet", "repos": 2, ...} or
         {"images": [...]}; see load_spec_file() for the format.

Blobs the registry already has are skipped (HEAD); a blob this run pushed
to another repository is cross-mounted; others go up as POST + monolithic
PUT ?digest= (or chunked, above). Manifests go after their blobs, index
children (by digest) before the index. Repositories are pushed in parallel
(--jobs, default 4), each worker on its own keep-alive connection.
Auth: Basic, or the Bearer token flow (anonymous or with --user/--password).

Prints ONE line of JSON and writes it to --out too:
  {"registry", "spec", "seed", "images": [{"repo", "repository" (alias of
   repo), "tag", "digest", "media_type", "size", "kind": image|index|
   signature, "platform" | "children": [{digest, media_type, platform}] |
   "signs": digest}], "stats": {"blobs_uploaded", "blobs_skipped",
   "blobs_mounted", "bytes_uploaded", "manifests_pushed", "requests",
   "seconds"}}
Module use: seed(url, "small", seed=1, user=..., ...) returns that dict.
"""
import argparse
import base64
import concurrent.futures
import dataclasses
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import ssl
import struct
import sys
import tarfile
import threading
import time
import urllib.parse
import zlib
from typing import Dict, List, Optional, Tuple

# --- media types ------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
D_CONFIG = "application/vnd.docker.container.image.v1+json"
D_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
MEDIA = {  # format -> (manifest, config, layer, index)
    "docker": (D_MANIFEST, D_CONFIG, D_LAYER, D_LIST),
    "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_INDEX),
}
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, D_MANIFEST, D_LIST])

RAND_CHUNK = 1 << 20          # payload is generated in pieces of this size
PATCH_CHUNK = 8 << 20         # chunked uploads send pieces of this size
STREAM_THRESHOLD = 32 << 20   # layers with a bigger payload are streamed
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
TAR_MTIME = int(EPOCH.timestamp())


class SeedError(RuntimeError):
    """A registry or token service refused or broke a request."""


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- layer content ----------------------------------------------------------

GZ_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, mtime 0, OS unknown


class StoredGzip:
    """A gzip writer using only stored (uncompressed) deflate blocks.

    Random payloads do not compress anyway; stored blocks cost one memcpy
    plus a CRC, and the bytes do not depend on the zlib version.
    """
    BLOCK = 65535

    def __init__(self):
        self.crc = 0
        self.isize = 0
        self.pending = b""
        self.started = False

    def compress(self, data, final=False):
        out = []
        if not self.started:
            out.append(GZ_HEADER)
            self.started = True
        if data:
            self.crc = zlib.crc32(data, self.crc)
            self.isize += len(data)
        buf = self.pending + data if self.pending else data
        mv, pos, n = memoryview(buf), 0, len(buf)
        while n - pos > self.BLOCK:  # full blocks with more data after them
            out += [b"\x00" + struct.pack("<HH", self.BLOCK, self.BLOCK ^ 0xFFFF),
                    mv[pos:pos + self.BLOCK]]
            pos += self.BLOCK
        if final:
            last = n - pos
            out += [b"\x01" + struct.pack("<HH", last, last ^ 0xFFFF), mv[pos:n],
                    struct.pack("<II", self.crc & 0xFFFFFFFF, self.isize & 0xFFFFFFFF)]
            self.pending = b""
        else:
            self.pending = bytes(mv[pos:n])
        return b"".join(out)


def safe_name(key):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)


def tar_pieces(seed, key, size):
    """A one-file ustar archive of `size` deterministic random bytes, in pieces."""
    ti = tarfile.TarInfo(safe_name(key) + ".bin")
    ti.size, ti.mtime, ti.mode = size, TAR_MTIME, 0o644
    ti.uname = ti.gname = "root"
    yield ti.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    rng = random.Random("%s/%s" % (seed, key))
    left = size
    while left:
        n = min(RAND_CHUNK, left)
        yield rng.randbytes(n)
        left -= n
    yield b"\0" * ((-size) % 512 + 1024)  # pad the member, then the end-of-archive blocks


class LayerStream:
    """Iterates a layer's compressed bytes; afterwards digest/size/diff_id are set."""

    def __init__(self, seed, key, size):
        self.seed, self.key, self.size_in = seed, key, size
        self.digest = self.diff_id = None
        self.size = 0

    def __iter__(self):
        gz, comp, raw, size = StoredGzip(), hashlib.sha256(), hashlib.sha256(), 0
        for piece in tar_pieces(self.seed, self.key, self.size_in):
            raw.update(piece)
            out = gz.compress(piece)
            if out:
                comp.update(out)
                size += len(out)
                yield out
        out = gz.compress(b"", final=True)
        comp.update(out)
        size += len(out)
        yield out
        self.digest, self.diff_id, self.size = ("sha256:" + comp.hexdigest(),
                                                "sha256:" + raw.hexdigest(), size)


@dataclasses.dataclass
class Blob:
    """Something to upload: in memory (data) or regenerated on demand (stream)."""
    digest: str
    size: int
    data: Optional[bytes] = None
    stream: Optional[Tuple[int, str, int]] = None  # (seed, key, payload size)
    diff_id: Optional[str] = None

    def chunks(self):
        if self.data is not None:
            return iter([self.data])
        return iter(LayerStream(*self.stream))


def blob_of(data):
    return Blob(sha256_digest(data), len(data), data=data)


# --- specs ------------------------------------------------------------------

@dataclasses.dataclass
class LayerSpec:
    key: str   # content identity: the same key (and seed) gives the same bytes
    size: int  # payload bytes inside the tar


@dataclasses.dataclass
class ImageSpec:
    repo: str
    tag: Optional[str]            # None: an index child, pushed by digest
    fmt: str                      # "docker" | "oci"
    layers: List[LayerSpec]
    platform: str = "linux/amd64"  # os/arch[/variant]
    created: str = iso(EPOCH)
    labels: Dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class IndexSpec:
    repo: str
    tag: str
    fmt: str
    children: List[ImageSpec]


@dataclasses.dataclass
class SignatureSpec:
    repo: str
    target_tag: str  # signs repo:target_tag; pushed as tag sha256-<hex>.sig


def split_platform(p):
    parts = p.split("/")
    if len(parts) < 2 or not all(parts):
        raise ValueError("platform must be os/arch[/variant]: %r" % p)
    return parts[0], parts[1], (parts[2] if len(parts) > 2 else None)


def labels_for(repo, tag):
    return {"org.opencontainers.image.version": tag or "",
            "org.opencontainers.image.title": repo,
            "org.opencontainers.image.vendor": "freightliner-e2e"}


def preset_small(layer_size=64 * 1024, **_):
    base = LayerSpec("base", layer_size)
    items = []
    tags = ["v1.0", "v1.1", "v2.0", "latest"]
    for i, repo in enumerate(["project-a/app", "project-a/web", "project-b/tool"]):
        for j, tag in enumerate(tags):
            created = iso(EPOCH + datetime.timedelta(days=30 * j, hours=i))
            items.append(ImageSpec(repo, tag, "docker" if (i + j) % 2 == 0 else "oci",
                                   [base, LayerSpec("%s:%s" % (repo, tag), layer_size)],
                                   created=created, labels=labels_for(repo, tag)))
    child = lambda repo, fmt, plat: ImageSpec(
        repo, None, fmt, [base, LayerSpec("%s:%s" % (repo, plat), 16 * 1024)], platform=plat,
        created=iso(EPOCH + datetime.timedelta(days=7)), labels=labels_for(repo, "v1"))
    items.append(IndexSpec("project-a/multi", "v1", "oci", [
        child("project-a/multi", "oci", p) for p in ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")]))
    items.append(IndexSpec("project-b/dmulti", "v1", "docker", [
        child("project-b/dmulti", "docker", p) for p in ("linux/amd64", "linux/arm64/v8")]))
    items.append(SignatureSpec("project-a/app", "v1.0"))
    return items


def preset_fleet(repos=16, tags=4, layer_size=1 << 20, **_):
    base = LayerSpec("fleet-base", layer_size)
    items = []
    for r in range(repos):
        repo = "fleet/repo-%02d" % r
        for t in range(tags):
            tag = "v%d.0" % (t + 1)
            items.append(ImageSpec(
                repo, tag, "docker" if (r + t) % 2 == 0 else "oci",
                [base] + [LayerSpec("%s:%s:%d" % (repo, tag, n), layer_size) for n in (1, 2)],
                created=iso(EPOCH + datetime.timedelta(days=t, minutes=r)),
                labels=labels_for(repo, tag)))
    items.append(IndexSpec("fleet/multi", "v1", "oci", [
        ImageSpec("fleet/multi", None, "oci", [base, LayerSpec("fleet/multi:" + p, layer_size)],
                  platform=p, labels=labels_for("fleet/multi", "v1"))
        for p in ("linux/amd64", "linux/arm64/v8")]))
    return items


def preset_big(big_size=256 << 20, **_):
    return [ImageSpec("big/layer", "v1", "oci", [LayerSpec("big", big_size)],
                      labels=labels_for("big/layer", "v1"))]


PRESETS = {"small": preset_small, "fleet": preset_fleet, "big": preset_big}


def load_spec_file(path, options):
    """A JSON spec file. Two shapes:

      {"preset": "fleet", "repos": 2, "tags": 1, "layer_size": 4096}
      {"images": [
         {"repo": "a/b", "tags": ["v1", "v2"], "format": "docker",
          "layers": [{"shared": "base", "size": 4096}, 8192],
          "platform": "linux/amd64", "labels": {"k": "v"}},
         {"repo": "a/m", "tag": "v1", "format": "oci",
          "platforms": ["linux/amd64", "linux/arm64/v8"], "layers": [4096]},
         {"repo": "a/b", "signature_for": "v1"}]}

    A layer given as a number is unique to its image; {"shared": NAME,
    "size": N} is the same blob wherever NAME is used. "platforms" makes an
    index (format oci) or manifest list (docker) of one child per platform.
    """
    with open(path) as f:
        doc = json.load(f)
    if "preset" in doc:
        opts = dict(options)
        opts.update({k: v for k, v in doc.items() if k != "preset"})
        return doc["preset"], PRESETS[doc["preset"]](**opts)
    items = []
    for n, e in enumerate(doc.get("images", [])):
        repo = e["repo"]
        if "signature_for" in e:
            items.append(SignatureSpec(repo, e["signature_for"]))
            continue
        fmt = e.get("format", "oci")
        if fmt not in MEDIA:
            raise ValueError("format must be docker or oci: %r" % fmt)
        tags = e.get("tags") or [e["tag"]]
        for j, tag in enumerate(tags):
            def layers(plat):
                out = []
                for k, l in enumerate(e.get("layers", [1024])):
                    if isinstance(l, dict) and "shared" in l:
                        out.append(LayerSpec("shared:" + l["shared"], int(l["size"])))
                    else:
                        size = int(l["size"] if isinstance(l, dict) else l)
                        out.append(LayerSpec("%s:%s:%s:%d" % (repo, tag, plat, k), size))
                return out
            created = iso(EPOCH + datetime.timedelta(days=j, minutes=n))
            labels = dict(labels_for(repo, tag), **e.get("labels", {}))
            if "platforms" in e:
                items.append(IndexSpec(repo, tag, fmt, [
                    ImageSpec(repo, None, fmt, layers(p), platform=p, created=created,
                              labels=labels) for p in e["platforms"]]))
            else:
                plat = e.get("platform", "linux/amd64")
                items.append(ImageSpec(repo, tag, fmt, layers(plat), platform=plat,
                                       created=created, labels=labels))
    return os.path.basename(path), items


# --- HTTP client ------------------------------------------------------------

def parse_challenge(header):
    """'Bearer realm="x",service="y"' -> ("bearer", {"realm": "x", ...})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest))


class Client:
    """One keep-alive connection to a registry, with Basic and Bearer auth.

    Not thread safe: use one per thread.
    """

    def __init__(self, url, user=None, password=None, ca=None, cert=None, key=None,
                 insecure=False, timeout=120):
        if "://" not in url:
            url = "http://" + url
        u = urllib.parse.urlsplit(url)
        self.scheme, self.netloc = u.scheme, u.netloc
        self.base = "%s://%s" % (self.scheme, self.netloc)
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=ca)
        if insecure:
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE
        if cert:
            self.ctx.load_cert_chain(cert, key)
        self.basic = None
        if user is not None:
            pair = ("%s:%s" % (user, password or "")).encode()
            self.basic = "Basic " + base64.b64encode(pair).decode()
        self.use_basic = False
        self.tokens = {}  # repository -> bearer token
        self.conn = None
        self.requests = 0

    def _connect(self, netloc, scheme):
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self.ctx)
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _send(self, method, path, body, headers):
        """One exchange; reconnects once if a kept-alive connection went stale."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect(self.netloc, self.scheme)
            try:
                self.requests += 1
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.BadStatusLine) as e:
                self.close()
                if attempt == 2:
                    raise SeedError("%s %s: %s" % (method, path, e))
                continue
            if r.will_close:
                self.close()
            return r.status, r.headers, data

    def _auth_header(self, repo):
        if repo in self.tokens:
            return "Bearer " + self.tokens[repo]
        if self.use_basic:
            return self.basic
        return None

    def _answer_challenge(self, header, repo):
        """Get what a 401's challenge asks for; False if there is nothing to try."""
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if self.basic is None or self.use_basic:
                return False
            self.use_basic = True
            return True
        if scheme == "bearer" and "realm" in params:
            scopes = params.get("scope", "").split()
            if repo:
                scopes.append("repository:%s:pull,push" % repo)
            self.tokens[repo] = self._fetch_token(params["realm"], params.get("service"),
                                                  list(dict.fromkeys(scopes)))
            return True
        return False

    def _fetch_token(self, realm, service, scopes):
        u = urllib.parse.urlsplit(realm)
        q = ([("service", service)] if service else []) + [("scope", s) for s in scopes]
        path = (u.path or "/") + "?" + (u.query + "&" if u.query else "") + urllib.parse.urlencode(q)
        headers = {"Authorization": self.basic} if self.basic else {}
        c = self._connect(u.netloc, u.scheme)
        try:
            self.requests += 1
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise SeedError("token service %s refused (%d): %s" % (realm, r.status, data[:300]))
        body = json.loads(data)
        token = body.get("token") or body.get("access_token")
        if not token:
            raise SeedError("token service %s answered without a token" % realm)
        return token

    def request(self, method, path, body=None, headers=None, repo=None):
        """(status, headers, body), answering auth challenges (at most twice)."""
        for attempt in range(3):
            h = dict(headers or {})
            auth = self._auth_header(repo)
            if auth:
                h["Authorization"] = auth
            status, rh, data = self._send(method, path, body, h)
            if status != 401 or attempt == 2:
                return status, rh, data
            if not self._answer_challenge(rh.get("WWW-Authenticate", ""), repo):
                return status, rh, data
        return status, rh, data

    def location(self, headers):
        """The path+query of a Location header (absolute or relative)."""
        loc = headers.get("Location")
        if not loc:
            raise SeedError("upload response without Location")
        u = urllib.parse.urlsplit(urllib.parse.urljoin(self.base + "/", loc))
        return u.path + ("?" + u.query if u.query else "")


def with_query(path, **params):
    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(params)


# --- pushing ----------------------------------------------------------------

class Stats:
    FIELDS = ("blobs_uploaded", "blobs_skipped", "blobs_mounted", "bytes_uploaded",
              "manifests_pushed")

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(self.FIELDS, 0)

    def add(self, field, n=1):
        with self.lock:
            self.counts[field] += n


class Seeder:
    """Builds images from specs and pushes them; shared by the worker threads."""

    def __init__(self, url, seed=1, jobs=4, verbose=False, **client_kw):
        self.url, self.seed, self.jobs, self.verbose = url, seed, max(1, jobs), verbose
        self.client_kw = client_kw
        self.stats = Stats()
        self.local = threading.local()
        self.clients = []
        self.lock = threading.Lock()
        self.layer_cache = {}      # key -> Blob (shared layers only)
        self.layer_locks = {}      # key -> Lock, so a shared layer is built once
        self.shared_keys = set()
        self.pushed_in = {}        # blob digest -> a repository this run put it in
        self.digests = {}          # (repo, tag) -> manifest digest

    def log(self, msg):
        if self.verbose:
            print("seed: " + msg, file=sys.stderr, flush=True)

    @property
    def client(self):
        c = getattr(self.local, "client", None)
        if c is None:
            c = self.local.client = Client(self.url, **self.client_kw)
            with self.lock:
                self.clients.append(c)
        return c

    # blobs

    def layer(self, ls):
        """The Blob for a layer spec (memoised when shared or streamed)."""
        if ls.key not in self.shared_keys and ls.size <= STREAM_THRESHOLD:
            return self._build_layer(ls)
        with self.lock:
            lock = self.layer_locks.setdefault(ls.key, threading.Lock())
        with lock:
            if ls.key not in self.layer_cache:
                self.layer_cache[ls.key] = self._build_layer(ls)
            return self.layer_cache[ls.key]

    def _build_layer(self, ls):
        stream = LayerStream(self.seed, ls.key, ls.size)
        if ls.size > STREAM_THRESHOLD:  # first pass: digests only, nothing kept
            for _ in stream:
                pass
            return Blob(stream.digest, stream.size, stream=(self.seed, ls.key, ls.size),
                        diff_id=stream.diff_id)
        data = b"".join(stream)
        return Blob(stream.digest, stream.size, data=data, diff_id=stream.diff_id)

    def push_blob(self, repo, blob):
        c = self.client
        status, _, body = c.request("HEAD", "/v2/%s/blobs/%s" % (repo, blob.digest), repo=repo)
        if status == 200:
            self.stats.add("blobs_skipped")
            return
        if status != 404:
            raise SeedError("HEAD blob %s@%s: %d %s" % (repo, blob.digest, status, body[:200]))
        with self.lock:
            source = self.pushed_in.get(blob.digest)
        start = "/v2/%s/blobs/uploads/" % repo
        if source and source != repo:
            start = with_query(start, mount=blob.digest, **{"from": source})
        status, rh, body = c.request("POST", start, headers={"Content-Length": "0"}, repo=repo)
        if status == 201:  # mounted from the other repository
            self.stats.add("blobs_mounted")
            return
        if status != 202:
            raise SeedError("POST upload %s: %d %s" % (repo, status, body[:300]))
        loc = c.location(rh)
        if blob.data is not None:  # monolithic: the whole blob in the PUT
            status, _, body = c.request(
                "PUT", with_query(loc, digest=blob.digest), body=blob.data, repo=repo,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(blob.size)})
        else:  # chunked: PATCH 8 MiB pieces, then PUT ?digest= with no body
            offset, buf = 0, bytearray()

            def patch(piece):
                nonlocal loc, offset
                st, hdrs, b = c.request(
                    "PATCH", loc, body=piece, repo=repo,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Length": str(len(piece)),
                             "Content-Range": "%d-%d" % (offset, offset + len(piece) - 1)})
                if st != 202:
                    raise SeedError("PATCH %s: %d %s" % (repo, st, b[:300]))
                loc = c.location(hdrs)
                offset += len(piece)
            for chunk in blob.chunks():
                buf += chunk
                while len(buf) >= PATCH_CHUNK:
                    patch(bytes(buf[:PATCH_CHUNK]))
                    del buf[:PATCH_CHUNK]
            if buf:
                patch(bytes(buf))
            if offset != blob.size:
                raise SeedError("streamed %d bytes, expected %d" % (offset, blob.size))
            status, _, body = c.request("PUT", with_query(loc, digest=blob.digest), repo=repo,
                                        headers={"Content-Length": "0"})
        if status != 201:
            raise SeedError("PUT blob %s@%s: %d %s" % (repo, blob.digest, status, body[:300]))
        self.stats.add("blobs_uploaded")
        self.stats.add("bytes_uploaded", blob.size)
        with self.lock:
            self.pushed_in.setdefault(blob.digest, repo)

    def push_manifest(self, repo, ref, data, media_type):
        digest = sha256_digest(data)
        status, rh, body = self.client.request(
            "PUT", "/v2/%s/manifests/%s" % (repo, ref), body=data, repo=repo,
            headers={"Content-Type": media_type, "Content-Length": str(len(data))})
        if status != 201:
            raise SeedError("PUT manifest %s:%s: %d %s" % (repo, ref, status, body[:400]))
        got = rh.get("Docker-Content-Digest")
        if got and got != digest:
            raise SeedError("registry digested %s:%s as %s, not %s" % (repo, ref, got, digest))
        self.stats.add("manifests_pushed")
        self.log("%s:%s %s" % (repo, ref, digest))
        return digest

    # images

    def push_image(self, spec):
        """Layers, config, then the manifest (by tag, or by digest for a child)."""
        osname, arch, variant = split_platform(spec.platform)
        manifest_mt, config_mt, layer_mt, _ = MEDIA[spec.fmt]
        layers = [self.layer(ls) for ls in spec.layers]
        for b in layers:
            self.push_blob(spec.repo, b)
        config = {"architecture": arch, "os": osname, "created": spec.created,
                  "author": "freightliner e2e seed",
                  "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                             "Cmd": ["/bin/sh"], "WorkingDir": "/", "Labels": spec.labels},
                  "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in layers]},
                  "history": [{"created": spec.created, "created_by": "seed layer %s" % ls.key}
                              for ls in spec.layers]}
        if variant:
            config["variant"] = variant
        cblob = blob_of(canonical_json(config))
        self.push_blob(spec.repo, cblob)
        manifest = {"schemaVersion": 2, "mediaType": manifest_mt,
                    "config": {"mediaType": config_mt, "digest": cblob.digest, "size": cblob.size},
                    "layers": [{"mediaType": layer_mt, "digest": b.digest, "size": b.size}
                               for b in layers]}
        data = canonical_json(manifest)
        ref = spec.tag or sha256_digest(data)
        digest = self.push_manifest(spec.repo, ref, data, manifest_mt)
        entry = {"repo": spec.repo, "repository": spec.repo, "tag": spec.tag, "digest": digest,
                 "media_type": manifest_mt, "size": len(data), "kind": "image",
                 "platform": spec.platform}
        return entry

    def push_index(self, spec):
        _, _, _, index_mt = MEDIA[spec.fmt]
        children = []
        for child in spec.children:
            e = self.push_image(child)
            osname, arch, variant = split_platform(child.platform)
            platform = {"architecture": arch, "os": osname}
            if variant:
                platform["variant"] = variant
            children.append({"mediaType": e["media_type"], "digest": e["digest"],
                             "size": e["size"], "platform": platform})
        data = canonical_json({"schemaVersion": 2, "mediaType": index_mt, "manifests": children})
        digest = self.push_manifest(spec.repo, spec.tag, data, index_mt)
        return {"repo": spec.repo, "repository": spec.repo, "tag": spec.tag, "digest": digest,
                "media_type": index_mt, "size": len(data), "kind": "index",
                "children": [{"digest": c["digest"], "media_type": c["mediaType"],
                              "platform": "/".join(filter(None, (c["platform"]["os"],
                                                                 c["platform"]["architecture"],
                                                                 c["platform"].get("variant"))))}
                             for c in children]}

    def push_signature(self, spec):
        """A cosign-style signature manifest at tag sha256-<hex>.sig.

        The layer is a real simplesigning payload naming the target digest;
        the signature annotation is deterministic filler, not a valid
        signature (nothing here can verify one).
        """
        target = self.digests.get((spec.repo, spec.target_tag))
        if target is None:
            raise SeedError("signature target %s:%s was not pushed" % (spec.repo, spec.target_tag))
        payload = canonical_json({
            "critical": {"identity": {"docker-reference": spec.repo},
                         "image": {"docker-manifest-digest": target},
                         "type": "cosign container image signature"},
            "optional": None})
        pblob = blob_of(payload)
        config = {"architecture": "", "os": "", "created": "0001-01-01T00:00:00Z",
                  "config": {}, "history": [{"created": "0001-01-01T00:00:00Z"}],
                  "rootfs": {"type": "layers", "diff_ids": [pblob.digest]}}
        cblob = blob_of(canonical_json(config))
        fake_sig = base64.b64encode(hashlib.sha512(b"not a signature:" + payload).digest()).decode()
        for b in (pblob, cblob):
            self.push_blob(spec.repo, b)
        data = canonical_json({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cblob.digest, "size": cblob.size},
            "layers": [{"mediaType": COSIGN_LAYER, "digest": pblob.digest, "size": pblob.size,
                        "annotations": {"dev.cosignproject.cosign/signature": fake_sig}}]})
        tag = "sha256-%s.sig" % target.split(":", 1)[1]
        digest = self.push_manifest(spec.repo, tag, data, OCI_MANIFEST)
        return {"repo": spec.repo, "repository": spec.repo, "tag": tag, "digest": digest,
                "media_type": OCI_MANIFEST, "size": len(data), "kind": "signature",
                "signs": target}

    def push_item(self, item):
        if isinstance(item, SignatureSpec):
            e = self.push_signature(item)
        elif isinstance(item, IndexSpec):
            e = self.push_index(item)
        else:
            e = self.push_image(item)
        with self.lock:
            self.digests[(e["repo"], e["tag"])] = e["digest"]
        return e

    def run(self, items):
        """Push all items; returns the summary entries in spec order."""
        # Layers used more than once are built once and kept in memory.
        seen = set()
        for it in items:
            for img in ([it] if isinstance(it, ImageSpec) else getattr(it, "children", [])):
                for ls in img.layers:
                    (self.shared_keys.add if ls.key in seen else seen.add)(ls.key)
        results = [None] * len(items)
        groups = {}  # repo -> indexes, in order; signatures wait for phase 2
        for i, it in enumerate(items):
            if not isinstance(it, SignatureSpec):
                groups.setdefault(it.repo, []).append(i)

        def push_group(idxs):
            for i in idxs:
                results[i] = self.push_item(items[i])

        try:
            with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
                futures = [pool.submit(push_group, idxs) for idxs in groups.values()]
                for f in concurrent.futures.as_completed(futures):
                    f.result()  # re-raise the first failure
            for i, it in enumerate(items):
                if isinstance(it, SignatureSpec):
                    results[i] = self.push_item(it)
        finally:
            for c in self.clients:
                c.close()
        return results


def seed(registry, spec="small", seed=1, jobs=4, verbose=False, user=None, password=None,
         ca=None, cert=None, key=None, insecure=False, **preset_options):
    """Seed `registry` (URL or host:port) with a preset name or spec file path.

    preset_options: repos, tags, layer_size, big_size. Returns the summary dict.
    """
    opts = {k: v for k, v in preset_options.items() if v is not None}
    if spec in PRESETS:
        name, items = spec, PRESETS[spec](**opts)
    elif os.path.exists(spec):
        name, items = load_spec_file(spec, opts)
    else:
        raise ValueError("--spec must be one of %s or a JSON file: %r" % (", ".join(PRESETS), spec))
    t0 = time.monotonic()
    s = Seeder(registry, seed=seed, jobs=jobs, verbose=verbose, user=user, password=password,
               ca=ca, cert=cert, key=key, insecure=insecure)
    images = s.run(items)
    stats = dict(s.stats.counts)
    stats["requests"] = sum(c.requests for c in s.clients)
    stats["seconds"] = round(time.monotonic() - t0, 3)
    url = registry if "://" in registry else "http://" + registry
    return {"registry": url, "spec": name, "seed": seed, "images": images, "stats": stats}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", required=True, help="http(s)://host:port (or host:port = http)")
    ap.add_argument("--ca", help="CA file for https")
    ap.add_argument("--cert", help="client certificate (mTLS)")
    ap.add_argument("--key", help="client key (mTLS)")
    ap.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--spec", default="small", help="small, fleet, big, or a JSON spec file")
    ap.add_argument("--seed", type=int, default=1, help="content seed (default 1)")
    ap.add_argument("--repos", type=int, help="fleet: repositories (16)")
    ap.add_argument("--tags", type=int, help="fleet: tags per repository (4)")
    ap.add_argument("--layer-size", type=int, help="layer payload bytes (small 65536, fleet 1 MiB)")
    ap.add_argument("--big-size", type=int, help="big: layer payload bytes (256 MiB)")
    ap.add_argument("--jobs", type=int, default=4, help="repositories pushed in parallel")
    ap.add_argument("--out", help="also write the JSON summary here")
    ap.add_argument("-v", "--verbose", action="store_true", help="log each manifest to stderr")
    a = ap.parse_args(argv)
    if bool(a.cert) != bool(a.key):
        ap.error("--cert and --key go together")
    try:
        summary = seed(a.registry, a.spec, seed=a.seed, jobs=a.jobs, verbose=a.verbose,
                       user=a.user, password=a.password, ca=a.ca, cert=a.cert, key=a.key,
                       insecure=a.insecure, repos=a.repos, tags=a.tags,
                       layer_size=a.layer_size, big_size=a.big_size)
    except (SeedError, ValueError, OSError, ssl.SSLError) as e:
        print("seed.py: %s" % e, file=sys.stderr)
        return 1
    line = json.dumps(summary)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
