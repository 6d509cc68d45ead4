#!/usr/bin/env python3
"""The air-gap example (scripts/examples/airgap.sh with airgap.yaml), run
against loopback registries: images signed as cosign signs them go over,
unsigned ones stay behind, and what arrives is checked independently (direct
HTTP to the site registry, skopeo on the archive)."""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


@scenario(weight=4)
def example_airgap(ctx):
    src = ctx.registry()
    images = e2e.seed_registry(src, "small")
    site = ctx.registry()
    work = ctx.tmp("airgap")
    key = os.path.join(work, "cosign.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", os.path.join(work, "cosign.pub")],
                   check=True, capture_output=True)
    digest = {(i["repository"], i["tag"]): i["digest"] for i in images}
    signed = [("project-a/app", "v1.1"), ("project-a/multi", "v1"), ("project-a/web", "v1.0")]
    for repo, tag in signed:
        r = ctx.run([e2e.PYTHON, os.path.join(e2e.HARNESS, "cosign_sign.py"), "--registry", src.url,
                     "--repo", repo, "--digest", digest[(repo, tag)], "--key", key,
                     "--where", "referrers" if repo.endswith("web") else "tag"])
        check(r.status == 0, "signing %s:%s: %r", repo, tag, r)
    env = dict(os.environ, SOURCE=src.host, SITE=site.host, SIGNING_KEY=os.path.join(work, "cosign.pub"),
               FREIGHTLINER=e2e.BIN)
    r = ctx.run(["sh", os.path.join(ROOT, "scripts", "examples", "airgap.sh"), work], env=env, timeout=600)
    # project-b/tool (latest by semver) is not signed: refused at both ends
    check(r.status == 1, "airgap.sh should end 1 (an unsigned image refused): %r", r)
    check("UNVERIFIED" in r.out + r.err, "no UNVERIFIED report: %r", r)
    for repo, tag in signed:
        tags = site.tags("mirror/" + repo)
        check(tag in tags, "mirror/%s:%s missing at the site (tags %s)", repo, tag, tags)
        status, _, _, got = site.manifest("mirror/" + repo, tag)
        check(got == digest[(repo, tag)], "mirror/%s:%s is %s, want %s", repo, tag, got, digest[(repo, tag)])
        sig = [t for t in tags if t.startswith(digest[(repo, tag)].replace(":", "-"))]
        check(sig, "the signature of %s:%s did not travel (tags %s)", repo, tag, tags)
    check(site.tags("mirror/project-a/app") and "v1.0" not in site.tags("mirror/project-a/app"),
          "the unsigned project-a/app:v1.0 reached the site")
    check(site.tags("mirror/project-b/tool") == [], "the unsigned project-b/tool reached the site")
    # the archive is readable by skopeo, digest for digest
    contents = json.loads(subprocess.run(["tar", "xOf", os.path.join(work, "site.tar"),
                                          "freightliner-contents.json"], check=True,
                                         capture_output=True).stdout)
    for img in contents["images"]:
        if "oci" in img["media_type"]:
            r = ctx.run(verify.SKOPEO + ["inspect", "--raw", "oci-archive:%s:%s" % (
                os.path.join(work, "site.tar"), img["name"])])
            check(r.status == 0, "skopeo cannot read %s: %r", img["name"], r)
            check("sha256:" + hashlib.sha256(r.out.encode()).hexdigest() == img["digest"], "skopeo sees another %s", img["name"])
