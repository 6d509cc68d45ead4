#!/usr/bin/env python3
"""Sign an image in a registry the way `cosign sign --key` does (for tests).

CLI:
  cosign_sign.py --registry URL --repo REPO --digest sha256:... --key KEY.pem
                 [--where tag|referrers] [--payload-digest D] [--tamper]
                 [--certificate] [--garbage]

Writes cosign's simple-signing payload for the image digest (or for
--payload-digest, to make a signature that covers another image), signs it
with the private key using the `openssl` command (ECDSA and RSA: over the
payload's SHA-256, ECDSA as ASN.1 DER; Ed25519: over the payload itself, as
sigstore does), base64s the signature into the
dev.cosignproject.cosign/signature annotation of a layer whose blob is the
payload, and pushes the signature manifest:

  --where tag        at REPO:sha256-<hex>.sig; an existing signature manifest
                     there gets one more layer, as cosign appends (default)
  --where referrers  as an OCI 1.1 referrer: artifactType
                     application/vnd.dev.cosign.artifact.sig.v1+json, subject
                     the image, pushed by digest, and listed in the referrers
                     tag schema index REPO:sha256-<hex> (Distribution 2.8 has
                     no referrers API), as cosign's OCI 1.1 mode does there

--tamper changes the payload after signing; --certificate adds a
dev.sigstore.cosign/certificate annotation (a keyless-looking signature);
--garbage writes a signature that is not base64.

Prints one JSON line: {"manifest": digest, "tag": tag, "payload": digest}.
Python 3 standard library, seed.py's client, and the openssl command.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed  # noqa: E402

SIG_ANN = "dev.cosignproject.cosign/signature"
CERT_ANN = "dev.sigstore.cosign/certificate"
PAYLOAD_MT = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
EMPTY_MT = "application/vnd.oci.empty.v1+json"


def key_type(key):
    out = subprocess.run(["openssl", "pkey", "-in", key, "-noout", "-text"],
                         check=True, capture_output=True, text=True).stdout
    return "ed25519" if out.startswith("ED25519") else "digest"


def sign(key, payload):
    with tempfile.NamedTemporaryFile() as f:
        f.write(payload)
        f.flush()
        if key_type(key) == "ed25519":
            cmd = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", f.name]
        else:
            cmd = ["openssl", "dgst", "-sha256", "-sign", key, f.name]
        return subprocess.run(cmd, check=True, capture_output=True).stdout


def push_blob(c, repo, data):
    digest = seed.sha256_digest(data)
    status, rh, body = c.request("POST", "/v2/%s/blobs/uploads/" % repo,
                                 headers={"Content-Length": "0"}, repo=repo)
    if status != 202:
        raise SystemExit("POST upload %s: %d %s" % (repo, status, body[:200]))
    status, _, body = c.request("PUT", seed.with_query(c.location(rh), digest=digest),
                                body=data, repo=repo,
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Length": str(len(data))})
    if status != 201:
        raise SystemExit("PUT blob %s: %d %s" % (repo, status, body[:200]))
    return {"digest": digest, "size": len(data)}


def push_manifest(c, repo, ref, data, mt):
    status, _, body = c.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=data, repo=repo,
                                headers={"Content-Type": mt, "Content-Length": str(len(data))})
    if status != 201:
        raise SystemExit("PUT manifest %s:%s: %d %s" % (repo, ref, status, body[:300]))
    return seed.sha256_digest(data)


def get_manifest(c, repo, ref, accept):
    status, rh, body = c.request("GET", "/v2/%s/manifests/%s" % (repo, ref), repo=repo,
                                 headers={"Accept": accept})
    if status == 404:
        return None, None
    if status != 200:
        raise SystemExit("GET manifest %s:%s: %d" % (repo, ref, status))
    return json.loads(body), rh.get("Content-Type")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--digest", required=True)
    ap.add_argument("--key", required=True, help="PEM private key")
    ap.add_argument("--where", choices=("tag", "referrers"), default="tag")
    ap.add_argument("--payload-digest")
    ap.add_argument("--tamper", action="store_true")
    ap.add_argument("--certificate", action="store_true")
    ap.add_argument("--garbage", action="store_true")
    a = ap.parse_args(argv)
    c = seed.Client(a.registry)
    host = a.registry.split("://")[-1]
    payload = json.dumps({
        "critical": {"identity": {"docker-reference": "%s/%s" % (host, a.repo)},
                     "image": {"docker-manifest-digest": a.payload_digest or a.digest},
                     "type": "cosign container image signature"},
        "optional": None}, separators=(",", ":")).encode()
    sig = base64.b64encode(sign(a.key, payload)).decode()
    if a.garbage:
        sig = "this is not base64!"
    if a.tamper:
        payload = payload.replace(b'"optional":null', b'"optional":{"x":"y"}')
    layer = push_blob(c, a.repo, payload)
    layer.update({"mediaType": PAYLOAD_MT, "annotations": {SIG_ANN: sig}})
    if a.certificate:
        layer["annotations"][CERT_ANN] = ("-----BEGIN CERTIFICATE-----\nMIIB\n"
                                          "-----END CERTIFICATE-----\n")
    base_tag = a.digest.replace(":", "-")
    if a.where == "tag":
        tag = base_tag + ".sig"
        m, _ = get_manifest(c, a.repo, tag, seed.OCI_MANIFEST)
        if m is None:
            cfg = push_blob(c, a.repo, seed.canonical_json(
                {"architecture": "", "os": "", "config": {},
                 "rootfs": {"type": "layers", "diff_ids": []}}))
            cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
            m = {"schemaVersion": 2, "mediaType": seed.OCI_MANIFEST, "config": cfg, "layers": []}
        m["layers"].append(layer)
        digest = push_manifest(c, a.repo, tag, seed.canonical_json(m), seed.OCI_MANIFEST)
    else:
        accept = ",".join([seed.OCI_MANIFEST, seed.OCI_INDEX, seed.D_MANIFEST, seed.D_LIST])
        status, rh, raw = c.request("GET", "/v2/%s/manifests/%s" % (a.repo, a.digest), repo=a.repo,
                                    headers={"Accept": accept})
        if status != 200:
            raise SystemExit("GET manifest %s@%s: %d" % (a.repo, a.digest, status))
        mt = rh.get("Content-Type")
        empty = push_blob(c, a.repo, b"{}")
        empty["mediaType"] = EMPTY_MT
        m = {"schemaVersion": 2, "mediaType": seed.OCI_MANIFEST, "artifactType": SIG_ARTIFACT,
             "config": empty, "layers": [layer],
             "subject": {"mediaType": mt, "digest": a.digest, "size": len(raw)}}
        data = seed.canonical_json(m)
        digest = push_manifest(c, a.repo, seed.sha256_digest(data), data, seed.OCI_MANIFEST)
        idx, _ = get_manifest(c, a.repo, base_tag, seed.OCI_INDEX)
        idx = idx or {"schemaVersion": 2, "mediaType": seed.OCI_INDEX, "manifests": []}
        idx["manifests"].append({"mediaType": seed.OCI_MANIFEST, "digest": digest,
                                 "size": len(data), "artifactType": SIG_ARTIFACT})
        push_manifest(c, a.repo, base_tag, seed.canonical_json(idx), seed.OCI_INDEX)
        tag = base_tag
    c.close()
    print(json.dumps({"manifest": digest, "tag": tag,
                      "payload": seed.sha256_digest(payload)}))


if __name__ == "__main__":
    main()
