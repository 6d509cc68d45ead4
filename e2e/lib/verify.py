"""Independent verification: skopeo and the registries' own storage.

Nothing here asks Freightliner: digests come from `skopeo inspect --raw`
(sha256 of the manifest bytes the registry serves), completeness from
`skopeo copy --all docker://... oci:DIR:TAG` (skopeo fetches and verifies
every blob of every platform), integrity from hashing the registry's blob
files on disk.
"""
import concurrent.futures
import hashlib
import json
import os
import shutil

from e2e import check, sha256

SKOPEO = ["skopeo", "--insecure-policy"]


def ref_of(reg, repo, ref):
    sep = "@" if ref.startswith("sha256:") else ":"
    return "docker://%s/%s%s%s" % (reg.host, repo, sep, ref)


def skopeo_raw(ctx, reg, repo, ref):
    """The raw manifest bytes, or None (and the error text)."""
    argv = SKOPEO + ["inspect", "--raw", "--retry-times", "0"] + reg.skopeo_flags("") + \
        [ref_of(reg, repo, ref)]
    r = ctx.run(argv, timeout=60)
    if r.status != 0:
        return None, r.err.strip()
    return r.out.encode(), None


def skopeo_digest(ctx, reg, repo, ref):
    """sha256 of the manifest as the registry serves it (skopeo inspect --raw)."""
    raw, err = skopeo_raw(ctx, reg, repo, ref)
    return (sha256(raw), None) if raw is not None else (None, err)


def oci_digest(ctx, layout_dir, tag):
    r = ctx.run(SKOPEO + ["inspect", "--raw", "oci:%s:%s" % (layout_dir, tag)], timeout=60)
    check(r.status == 0, "skopeo cannot read oci:%s:%s: %s", layout_dir, tag, r.err.strip())
    return sha256(r.out.encode())


def skopeo_pull(ctx, reg, repo, ref):
    """skopeo copy --all of the image to a temp OCI layout (verifies every
    blob). Returns (ok, error text)."""
    d = ctx.tmp("pull")
    tag = ref if not ref.startswith("sha256:") else "pulled"
    argv = SKOPEO + ["copy", "--all", "--quiet", "--retry-times", "0"] + reg.skopeo_flags("src") + \
        [ref_of(reg, repo, ref), "oci:%s:%s" % (d, tag)]
    r = ctx.run(argv, timeout=300)
    shutil.rmtree(d, ignore_errors=True)
    return r.status == 0, r.err.strip()


def same_image(ctx, src, src_repo, src_ref, dst, dst_repo, dst_ref=None, pull=True):
    """The destination tag has the source's manifest digest (both read with
    skopeo) and skopeo can copy the destination image. Returns the digest."""
    dst_ref = dst_ref or src_ref
    sd, err = skopeo_digest(ctx, src, src_repo, src_ref)
    check(sd is not None, "skopeo cannot inspect the source %s/%s:%s: %s", src.host, src_repo, src_ref, err)
    dd, err = skopeo_digest(ctx, dst, dst_repo, dst_ref)
    check(dd is not None, "skopeo cannot inspect the destination %s/%s:%s: %s", dst.host, dst_repo,
          dst_ref, err)
    check(sd == dd, "digest differs: source %s/%s:%s is %s, destination %s/%s:%s is %s",
          src.host, src_repo, src_ref, sd, dst.host, dst_repo, dst_ref, dd)
    if pull:
        ok, err = skopeo_pull(ctx, dst, dst_repo, dst_ref)
        check(ok, "skopeo copy of the destination %s/%s:%s failed: %s", dst.host, dst_repo, dst_ref, err)
    return sd


def same_images(ctx, pairs, jobs=4, pull=True):
    """same_image for many (src, src_repo, src_ref, dst, dst_repo, dst_ref), in
    parallel. pull=False when registry_consistent() follows (it pulls every tag)."""
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        return list(ex.map(lambda p: same_image(ctx, *p, pull=pull), pairs))


def registry_consistent(ctx, reg, jobs=4):
    """Every tag of the registry can be copied by skopeo (no tag points at a
    missing or corrupt blob), and every blob file hashes to its name.
    Returns the list of (repo, tag)."""
    tags = reg.all_tags()

    def pull(rt):
        return rt, skopeo_pull(ctx, reg, rt[0], rt[1])
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        for (repo, tag), (ok, err) in ex.map(pull, tags):
            check(ok, "destination tag %s/%s:%s is broken (skopeo copy failed): %s",
                  reg.host, repo, tag, err)
    bad = reg.bad_blobs()
    check(not bad, "blobs in %s storage do not match their digest: %s", reg.host, bad)
    return tags


def tags_intact(reg):
    """Fast check without skopeo: every tag's manifest (and every child of an
    index) and every blob it names exist. Returns a list of problems."""
    problems = []
    for repo, tag in reg.all_tags():
        problems += manifest_problems(reg, repo, tag)
    return problems


def manifest_problems(reg, repo, ref):
    status, data, mt, _ = reg.manifest(repo, ref)
    if status != 200:
        return ["%s/%s:%s: manifest HTTP %d" % (reg.host, repo, ref, status)]
    problems = []
    m = json.loads(data)
    if "manifests" in m:
        for child in m["manifests"]:
            problems += manifest_problems(reg, repo, child["digest"])
        return problems
    for desc in [m.get("config")] + (m.get("layers") or []):
        if desc and not reg.blob_exists(repo, desc["digest"]):
            problems.append("%s/%s@%s names missing blob %s" % (reg.host, repo, ref, desc["digest"]))
    return problems


def oci_layout_blobs_ok(layout_dir):
    """Every blob of an OCI layout hashes to its name; returns the bad ones."""
    bad = []
    root = os.path.join(layout_dir, "blobs", "sha256")
    for name in os.listdir(root):
        h = hashlib.sha256()
        with open(os.path.join(root, name), "rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                h.update(piece)
        if h.hexdigest() != name:
            bad.append(name)
    return bad


def oci_layout_problems(layout_dir, digest):
    """Blobs and child manifests named by digest that the layout lacks."""
    def path(d):
        return os.path.join(layout_dir, "blobs", *d.split(":", 1))
    if not os.path.exists(path(digest)):
        return ["manifest %s missing" % digest]
    with open(path(digest), "rb") as f:
        m = json.load(f)
    problems = []
    for child in m.get("manifests") or []:
        problems += oci_layout_problems(layout_dir, child["digest"])
    for desc in [m.get("config")] + (m.get("layers") or []):
        if desc and not os.path.exists(path(desc["digest"])):
            problems.append("blob %s missing" % desc["digest"])
    return problems
