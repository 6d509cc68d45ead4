#!/usr/bin/env python3
"""Push generated test images to a registry over the Distribution HTTP API.

Content is deterministic from --seed (incompressible random layer bytes),
so runs are repeatable. Presets:

  small  3 repositories (project-a/app, project-a/web, project-b/tool) x
         tags v1.0 v1.1 v2.0 latest, 2 layers of 64 KiB plus a base layer
         shared by all; Docker schema 2 and OCI media types; an OCI index
         project-a/multi:v1 (linux/amd64, linux/arm64/v8, linux/arm/v7); a
         Docker manifest list project-b/dmulti:v1; a cosign-style signature
         tag sha256-<hex>.sig for project-a/app:v1.0
  fleet  --repos N (16) x --tags T (4) x 3 layers of --layer-size bytes
         (1 MiB), one base layer shared by all, Docker and OCI alternating,
         plus one multi-arch index fleet/multi:v1
  big    big/layer:v1 with one --big-size layer (256 MiB) streamed in
         8 MiB PATCH chunks, never held whole in memory

Blobs the registry has are skipped (HEAD); manifests are pushed after their
blobs. Prints a JSON summary {"images": [{repository, tag, digest,
media_type}]} (also to --out). Auth: Basic or the Bearer token flow.
"""
import argparse
import base64
import hashlib
import http.client
import json
import random
import re
import ssl
import sys
import threading
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
D_CONFIG = "application/vnd.docker.container.image.v1+json"
D_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
COSIGN = "application/vnd.dev.cosign.simplesigning.v1+json"


class Client:
    """One keep-alive connection per thread, with Basic/Bearer auth."""

    def __init__(self, url, user=None, password=None, ca=None, cert=None, key=None):
        u = urllib.parse.urlparse(url)
        self.https = u.scheme == "https"
        self.netloc = u.netloc
        self.ctx = None
        if self.https:
            self.ctx = ssl.create_default_context(cafile=ca)
            if cert:
                self.ctx.load_cert_chain(cert, key)
        self.basic = None
        if user:
            self.basic = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        self.tokens = {}
        self.local = threading.local()

    def conn(self, netloc=None):
        netloc = netloc or self.netloc
        c = getattr(self.local, "c", None)
        if c is None:
            if self.https:
                c = http.client.HTTPSConnection(netloc, context=self.ctx, timeout=60)
            else:
                c = http.client.HTTPConnection(netloc, timeout=60)
            self.local.c = c
        return c

    def _token(self, challenge):
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        q = {"service": params.get("service", "")}
        if "scope" in params:
            q["scope"] = params["scope"]
        realm = urllib.parse.urlparse(params["realm"])
        c = http.client.HTTPConnection(realm.netloc, timeout=30)
        headers = {"Authorization": self.basic} if self.basic else {}
        c.request("GET", realm.path + "?" + urllib.parse.urlencode(q), headers=headers)
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        return body.get("token") or body.get("access_token")

    def request(self, method, path, body=None, headers=None, scope_key=None):
        headers = dict(headers or {})
        key = scope_key or path.split("/blobs/")[0].split("/manifests/")[0]
        for attempt in range(3):
            h = dict(headers)
            if key in self.tokens:
                h["Authorization"] = "Bearer " + self.tokens[key]
            elif self.basic:
                h["Authorization"] = self.basic
            if hasattr(body, "seek"):
                body.seek(0)
            c = self.conn()
            try:
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
            except (http.client.HTTPException, ConnectionError):
                self.local.c = None
                continue
            if r.status == 401 and "bearer" in r.getheader("WWW-Authenticate", "").lower():
                self.tokens[key] = self._token(r.getheader("WWW-Authenticate"))
                continue
            return r, data
        raise RuntimeError("%s %s failed" % (method, path))


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Seeder:
    def __init__(self, client, seed):
        self.c = client
        self.rng = random.Random(seed)
        self.images = []
        self.lock = threading.Lock()

    def blob(self, repo, data):
        d = digest(data)
        r, _ = self.c.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
        if r.status == 200:
            return d, len(data)
        r, body = self.c.request("POST", "/v2/%s/blobs/uploads/" % repo,
                                 headers={"Content-Length": "0"})
        if r.status != 202:
            raise RuntimeError("POST upload %s: %d %s" % (repo, r.status, body[:200]))
        loc = r.getheader("Location")
        u = urllib.parse.urlparse(loc)
        path = u.path + "?" + (u.query + "&" if u.query else "") + "digest=" + d
        r, body = self.c.request("PUT", path, body=data,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Length": str(len(data))})
        if r.status != 201:
            raise RuntimeError("PUT blob %s: %d %s" % (repo, r.status, body[:200]))
        return d, len(data)

    def big_blob(self, repo, size, chunk=8 << 20):
        """Stream `size` random bytes: hash pass, then upload in PATCH chunks."""
        def chunks():
            rng = random.Random(4242)
            left = size
            while left:
                n = min(chunk, left)
                yield rng.randbytes(n)
                left -= n
        h = hashlib.sha256()
        for part in chunks():
            h.update(part)
        d = "sha256:" + h.hexdigest()
        r, _ = self.c.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
        if r.status == 200:
            return d, size
        r, _ = self.c.request("POST", "/v2/%s/blobs/uploads/" % repo, headers={"Content-Length": "0"})
        loc = r.getheader("Location")
        at = 0
        for part in chunks():
            u = urllib.parse.urlparse(loc)
            r, body = self.c.request("PATCH", u.path + ("?" + u.query if u.query else ""), body=part,
                                     headers={"Content-Type": "application/octet-stream",
                                              "Content-Range": "%d-%d" % (at, at + len(part) - 1),
                                              "Content-Length": str(len(part))})
            if r.status != 202:
                raise RuntimeError("PATCH: %d %s" % (r.status, body[:200]))
            loc = r.getheader("Location")
            at += len(part)
        u = urllib.parse.urlparse(loc)
        path = u.path + "?" + (u.query + "&" if u.query else "") + "digest=" + d
        r, body = self.c.request("PUT", path, headers={"Content-Length": "0"})
        if r.status != 201:
            raise RuntimeError("PUT big blob: %d %s" % (r.status, body[:200]))
        return d, size

    def manifest(self, repo, ref, body, media_type, record=True):
        data = json.dumps(body, separators=(",", ":")).encode()
        r, resp = self.c.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=data,
                                 headers={"Content-Type": media_type,
                                          "Content-Length": str(len(data))})
        if r.status != 201:
            raise RuntimeError("PUT manifest %s:%s: %d %s" % (repo, ref, r.status, resp[:300]))
        d = digest(data)
        if record:
            with self.lock:
                self.images.append({"repository": repo, "tag": ref, "digest": d,
                                    "media_type": media_type, "size": len(data)})
        return d, len(data)

    def image(self, repo, tag, layers, docker, arch="amd64", variant=None, created=None,
              tagged=True):
        cfg = {"architecture": arch, "os": "linux",
               "created": created or "2024-01-01T00:00:00Z",
               "config": {"Labels": {"org.opencontainers.image.version": tag}},
               "rootfs": {"type": "layers",
                          "diff_ids": [digest(l) for l in layers]}}
        if variant:
            cfg["variant"] = variant
        cdata = json.dumps(cfg, sort_keys=True).encode()
        cd, cs = self.blob(repo, cdata)
        descs = []
        for l in layers:
            d, s = self.blob(repo, l)
            descs.append({"mediaType": D_LAYER if docker else OCI_LAYER, "digest": d, "size": s})
        mt = D_MANIFEST if docker else OCI_MANIFEST
        body = {"schemaVersion": 2, "mediaType": mt,
                "config": {"mediaType": D_CONFIG if docker else OCI_CONFIG,
                           "digest": cd, "size": cs},
                "layers": descs}
        return self.manifest(repo, tag if tagged else digest(json.dumps(body, separators=(",", ":")).encode()),
                             body, mt, record=tagged)

    def index(self, repo, tag, platforms, docker, layer_size):
        children = []
        for arch, variant in platforms:
            layers = [self.rng.randbytes(layer_size)]
            d, s = self.image(repo, tag, layers, docker, arch, variant, tagged=False)
            p = {"architecture": arch, "os": "linux"}
            if variant:
                p["variant"] = variant
            children.append({"mediaType": D_MANIFEST if docker else OCI_MANIFEST,
                             "digest": d, "size": s, "platform": p})
        mt = D_LIST if docker else OCI_INDEX
        return self.manifest(repo, tag, {"schemaVersion": 2, "mediaType": mt,
                                         "manifests": children}, mt)


def seed_small(s, layer_size):
    base = s.rng.randbytes(layer_size)
    tags = ["v1.0", "v1.1", "v2.0", "latest"]
    for i, repo in enumerate(["project-a/app", "project-a/web", "project-b/tool"]):
        for j, tag in enumerate(tags):
            docker = (i + j) % 2 == 0
            s.image(repo, tag, [base, s.rng.randbytes(layer_size)], docker,
                    created="2024-0%d-01T00:00:00Z" % (j + 1))
    s.index("project-a/multi", "v1", [("amd64", None), ("arm64", "v8"), ("arm", "v7")],
            False, 4096)
    s.index("project-b/dmulti", "v1", [("amd64", None), ("arm64", "v8")], True, 4096)
    app = next(i for i in s.images if i["repository"] == "project-a/app" and i["tag"] == "v1.0")
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": app["digest"]}}}).encode()
    pd, ps = s.blob("project-a/app", payload)
    cd, cs = s.blob("project-a/app", b"{}")
    sig = "sha256-%s.sig" % app["digest"][7:]
    s.manifest("project-a/app", sig, {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
        "layers": [{"mediaType": COSIGN, "digest": pd, "size": ps,
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}]},
        OCI_MANIFEST)


def seed_fleet(s, repos, ntags, layer_size, workers=4):
    base = s.rng.randbytes(layer_size)
    jobs = []
    for r in range(repos):
        for t in range(ntags):
            layers = [base, s.rng.randbytes(layer_size), s.rng.randbytes(layer_size)]
            jobs.append(("fleet/repo-%02d" % r, "v%d.0" % (t + 1), layers, (r + t) % 2 == 0))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not jobs:
                    return
                repo, tag, layers, docker = jobs.pop()
            s.image(repo, tag, layers, docker)
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s.index("fleet/multi", "v1", [("amd64", None), ("arm64", "v8")], False, layer_size)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", required=True, help="http(s)://host:port")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--spec", default="small", choices=["small", "fleet", "big"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repos", type=int, default=16)
    ap.add_argument("--tags", type=int, default=4)
    ap.add_argument("--layer-size", type=int, default=None)
    ap.add_argument("--big-size", type=int, default=256 << 20)
    ap.add_argument("--out")
    a = ap.parse_args()
    c = Client(a.registry, a.user, a.password, a.ca, a.cert, a.key)
    s = Seeder(c, a.seed)
    if a.spec == "small":
        seed_small(s, a.layer_size or 64 * 1024)
    elif a.spec == "fleet":
        seed_fleet(s, a.repos, a.tags, a.layer_size or 1 << 20)
    else:
        d, size = s.big_blob("big/layer", a.big_size)
        cd, cs = s.blob("big/layer", json.dumps({"architecture": "amd64", "os": "linux",
                                                  "rootfs": {"type": "layers", "diff_ids": [d]}}).encode())
        s.manifest("big/layer", "v1", {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                       "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
                                       "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": size}]},
                   OCI_MANIFEST)
    out = json.dumps({"images": s.images})
    if a.out:
        with open(a.out, "w") as f:
            f.write(out)
    print(out)


if __name__ == "__main__":
    main()
