#!/usr/bin/env python3
"""valgrind memcheck over a small CLI replication: no memory errors and no
definite leaks in the real binary doing real work (threads, TLS-less HTTP,
the engine, the Lua stdlib)."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402

BIN = os.environ.get("FREIGHTLINER_BIN", "bin/freightliner")


def sanitized(binary):
    """Whether binary links a sanitizer runtime (make sanitize / make tsan):
    their shadow memory and interceptors do not run under valgrind."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(lib in out for lib in ("libasan", "libtsan", "libubsan", "libmsan"))


@scenario(weight=8, timeout=300)
def valgrind_memcheck_replication(ctx):
    # scripts/setup.sh installs valgrind: a missing one is a broken setup
    check(shutil.which("valgrind") is not None,
          "valgrind is not installed (scripts/setup.sh installs it)")
    if sanitized(BIN):
        raise e2e.Skip("%s is a sanitizer build; valgrind cannot run it" % BIN)
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    r = ctx.run(["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                 "--error-exitcode=99", BIN, "replicate", "--source", src.host,
                 "--destination", dst.host, "--repository-pattern", "project-b/*",
                 "--no-progress"], timeout=280)
    check(r.status != 99, "valgrind found memory errors or definite leaks: %r", r)
    check(r.status == 0, "the replication failed under valgrind: %r", r)
    check("ERROR SUMMARY: 0 errors" in r.err, "valgrind reported errors: %s", r.err[-1500:])
    for repo in ("project-b/tool", "project-b/dmulti"):
        for tag in src.tags(repo):
            verify.same_image(ctx, src, repo, tag, dst, repo, tag, pull=False)
