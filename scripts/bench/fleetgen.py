#!/usr/bin/env python3
"""Write a fleet of small images straight into a Distribution registry's
filesystem storage (standard library only), so that thousands of tags take
seconds to seed instead of an upload each.

  fleetgen.py --data DIR --repos R --tags T [--layer-size B] [--shared-tags]

DIR is the registry's storage root (registry.py's DIR/data); write it before
the registry starts (the registry caches what it has read). Each image is a
Docker schema 2 manifest with a unique config, one layer shared by the whole
fleet and one layer of its own (B bytes, default 512). With --shared-tags
every tag of a repository names the same image (one manifest per repository:
100,000 tags cost two small files each), for plans that are big in tags, not
in content. Prints one JSON line: {"repos", "tags", "images", "blobs"}.

Layout written (what the registry's filesystem driver reads):
  docker/registry/v2/blobs/sha256/XX/HEX/data
  docker/registry/v2/repositories/REPO/_layers/sha256/HEX/link
  docker/registry/v2/repositories/REPO/_manifests/revisions/sha256/HEX/link
  docker/registry/v2/repositories/REPO/_manifests/tags/TAG/current/link
  docker/registry/v2/repositories/REPO/_manifests/tags/TAG/index/sha256/HEX/link
"""
import argparse
import hashlib
import json
import os

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class Store:
    def __init__(self, data):
        self.v2 = os.path.join(data, "docker", "registry", "v2")
        self.blobs = 0

    def blob(self, payload):
        hexd = hashlib.sha256(payload).hexdigest()
        d = os.path.join(self.v2, "blobs", "sha256", hexd[:2], hexd)
        if not os.path.exists(os.path.join(d, "data")):
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "data"), "wb") as f:
                f.write(payload)
            self.blobs += 1
        return "sha256:" + hexd

    def link(self, *parts, digest):
        d = os.path.join(self.v2, "repositories", *parts)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "link"), "w") as f:
            f.write(digest)


def image(store, repo, key, base, base_digest, layer_size):
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"fleet": key}},
                         "rootfs": {"type": "layers", "diff_ids": []}}, sort_keys=True).encode()
    own = hashlib.sha256(key.encode()).digest() * (layer_size // 32 + 1)
    own = own[:layer_size]
    cd, ld = store.blob(config), store.blob(own)
    for d in (cd, base_digest, ld):
        store.link(repo, "_layers", "sha256", d.split(":")[1], digest=d)
    m = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": {"mediaType": CONFIG, "size": len(config), "digest": cd},
                    "layers": [{"mediaType": LAYER, "size": len(base), "digest": base_digest},
                               {"mediaType": LAYER, "size": len(own), "digest": ld}]},
                   indent=3).encode()
    md = store.blob(m)
    store.link(repo, "_manifests", "revisions", "sha256", md.split(":")[1], digest=md)
    return md


def tag(store, repo, name, md):
    store.link(repo, "_manifests", "tags", name, "current", digest=md)
    store.link(repo, "_manifests", "tags", name, "index", "sha256", md.split(":")[1], digest=md)


def generate(data, repos, tags, layer_size=512, shared_tags=False):
    store = Store(data)
    base = hashlib.sha256(b"fleet-base").digest() * 64
    base_digest = store.blob(base)
    images = 0
    for r in range(repos):
        repo = "scale/r%05d" % r
        md = None
        for t in range(tags):
            if md is None or not shared_tags:
                md = image(store, repo, "%s:%d" % (repo, t), base, base_digest, layer_size)
                images += 1
            tag(store, repo, "t%05d" % t, md)
    return {"repos": repos, "tags": repos * tags, "images": images, "blobs": store.blobs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--repos", type=int, required=True)
    ap.add_argument("--tags", type=int, required=True)
    ap.add_argument("--layer-size", type=int, default=512)
    ap.add_argument("--shared-tags", action="store_true")
    a = ap.parse_args()
    print(json.dumps(generate(a.data, a.repos, a.tags, a.layer_size, a.shared_tags)))


if __name__ == "__main__":
    main()
