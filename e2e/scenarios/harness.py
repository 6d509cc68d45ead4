#!/usr/bin/env python3
"""The test tools themselves: the fault proxy's self-test, and the proxy in
front of a real registry (pushes through it need its Location rewriting;
skopeo reads through it byte for byte)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402


@scenario(weight=5)
def faultproxy_self_test(ctx):
    r = ctx.run([e2e.PYTHON, os.path.join(e2e.HARNESS, "faultproxy.py"), "--self-test"], timeout=120)
    check(r.status == 0, "faultproxy self-test failed:\n%s", r.out[-3000:] + r.err[-2000:])


@scenario(weight=6)
def faultproxy_in_front_of_a_registry(ctx):
    reg = ctx.registry()
    proxy = ctx.faultproxy(reg, [])
    # the seeder pushes through the proxy: POST, then PUT/PATCH to the Location
    # the registry returned (pointing at itself) that the proxy rewrote
    images = e2e.seed_registry(e2e.Registry(dict(reg.info, url=proxy.url, host=proxy.host)), "small")
    check(images, "nothing seeded through the proxy")
    via = e2e.Registry(dict(reg.info, url=proxy.url, host=proxy.host))
    for i in images[:4]:
        d, err = verify.skopeo_digest(ctx, via, i["repository"], i["tag"])
        check(d == i["digest"], "through the proxy %s:%s is %s (%s), seeded %s", i["repository"], i["tag"],
              d, err, i["digest"])
    ok, err = verify.skopeo_pull(ctx, via, "project-a/multi", "v1")
    check(ok, "skopeo copy through the proxy failed: %s", err)
    # skopeo follows the upload Location as given: it must point at the proxy
    r = ctx.run(verify.SKOPEO + ["copy", "--all", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                                 "docker://%s/project-a/app:v1.0" % proxy.host,
                                 "docker://%s/pushed/app:v1.0" % proxy.host], timeout=120)
    check(r.status == 0, "skopeo push through the proxy failed: %r", r)
    verify.same_image(ctx, reg, "project-a/app", "v1.0", reg, "pushed/app", "v1.0")
    # the upload sessions (PUT .../uploads/<uuid>) came through the proxy
    check(any(q["method"] in ("PUT", "PATCH") and q["path"].startswith("/v2/pushed/app/blobs/uploads/")
              and len(q["path"]) > len("/v2/pushed/app/blobs/uploads/") for q in proxy.requests()),
          "skopeo's uploads bypassed the proxy: Location not rewritten")
    requests = proxy.requests()
    check(any(q["method"] == "PATCH" or q["method"] == "PUT" for q in requests),
          "the proxy saw no upload: %s", requests[:5])
    check(not proxy.faults(), "faults were logged without rules")


if __name__ == "__main__":
    e2e.standalone(__file__)
