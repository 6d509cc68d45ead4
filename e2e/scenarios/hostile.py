#!/usr/bin/env python3
"""A hostile registry (e2e/harness/hostile.py) against the real binary: the
cases of issue #18. Credentials never leave the registry's origin (a second
listener records whether any Authorization reached it), every quantity the
registry controls is bounded by a named limit, and the process never dies
of a signal, even under an address-space cap. Each run is measured: exit
status, error text, peak RSS (< 256 MiB) and wall time (< 30 s), with wide
margins over what it takes (see docs/TESTING.md, "Hostile registries").

Two scenarios depend on other parts of #18 (names are data, escaped
output) and run in the full suite only until those are merged."""
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
from e2e import check, scenario  # noqa: E402

sys.path.insert(0, e2e.HARNESS)
import hostile  # noqa: E402
from e2e import harness_registry  # noqa: E402

RSS_MIB = 256
SECONDS = 30
PW_ENV = "HOSTILE_PASSWORD"
CREDS = ["--username", hostile.USER, "--password-env", PW_ENV]
ENV = {PW_ENV: hostile.PASSWORD}


def watch_hwm(pid, name, out, done):
    """Poll VmHWM (the peak resident set of the process's current image)
    until done: wait4's ru_maxrss would also count the forked Python before
    exec, which here holds the hostile registry's data."""
    while not done.is_set():
        try:
            with open("/proc/%d/status" % pid) as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
            if st.get("Name", "").strip() == name[:15] and "VmHWM" in st:
                out[0] = max(out[0], int(st["VmHWM"].split()[0]))
        except (OSError, ValueError):
            pass
        done.wait(0.02)


def run(ctx, args, timeout=120, env=None, address_space=None):
    """Run the binary; the Result also has .rss_mib (peak resident set, by
    VmHWM) and .signal (the signal that ended it, or None)."""
    argv = [e2e.BIN] + [str(a) for a in args]
    e = dict(os.environ)
    e.update(ENV)
    e.update(env or {})

    def limit():
        if address_space:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    ctx.log("$ %s%s", " ".join(argv),
            " (address space %d MiB)" % (address_space >> 20) if address_space else "")
    t = time.time()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                         preexec_fn=limit, start_new_session=True)
    bufs = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda f=f, k=k: bufs[k].append(f.read()))
               for f, k in ((p.stdout, "out"), (p.stderr, "err"))]
    for th in readers:
        th.start()
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    timer = threading.Timer(timeout, kill)
    timer.start()
    hwm, done = [0], threading.Event()
    watcher = threading.Thread(target=watch_hwm,
                               args=(p.pid, os.path.basename(e2e.BIN), hwm, done))
    watcher.start()
    _, status, _ = os.wait4(p.pid, 0)
    done.set()
    watcher.join()
    timer.cancel()
    p.returncode = status  # reaped here: keep Popen from waiting again
    for th in readers:
        th.join()
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + sig
    r = e2e.Result(argv, code, b"".join(bufs["out"]).decode(errors="replace"),
                   b"".join(bufs["err"]).decode(errors="replace"), time.time() - t)
    # None: it ended before its peak could be read (a fast exit)
    r.rss_mib, r.signal = (hwm[0] / 1024.0 if hwm[0] else None), sig
    ctx.log("-> exit %d%s in %.2fs, peak RSS %s MiB\n  stdout: %s\n  stderr: %s", r.status,
            " (signal %d)" % sig if sig else "", r.seconds,
            "%.1f" % r.rss_mib if r.rss_mib else "?", r.out[-1500:], r.err[-3000:])
    check(not timed_out, "timed out after %ss: %r", timeout, r)
    return r


def fails(ctx, r, code, *words, rss=RSS_MIB, seconds=SECONDS):
    """r failed cleanly: exit 1, no signal, error CODE naming each word, in
    bounds."""
    check(r.signal is None, "died of signal %s: %r", r.signal, r)
    check(r.status == 1, "exit status %s, want 1: %r", r.status, r)
    text = r.err + r.out  # list-tags/catalog: stderr; replicate: its summary
    check("(%s)" % code in text, "want a %s error: %r", code, r)
    for w in words:
        check(w in text, "the error does not say %r: %r", w, r)
    bounded(ctx, r, rss, seconds)


def bounded(ctx, r, rss=RSS_MIB, seconds=SECONDS):
    check(r.rss_mib is None or r.rss_mib < rss, "peak RSS %.0f MiB, over %d MiB: %r",
          r.rss_mib or 0, rss, r)
    check(r.seconds < seconds, "took %.1fs, over %ds: %r", r.seconds, seconds, r)
    ctx.note("%s, %.1fs", "%.1f MiB" % r.rss_mib if r.rss_mib else "RSS not seen", r.seconds)


class Servers:
    """A hostile registry and its thief, stopped when the scenario ends."""

    def __init__(self, ctx, auth="none", **kw):
        self.thief = hostile.Listener()
        self.reg = hostile.Hostile(auth=auth, thief=self.thief, **kw)
        ctx.log("hostile registry %s (auth %s), thief %s", self.reg.host, auth, self.thief.host)

    def __enter__(self):
        return self.reg, self.thief

    def __exit__(self, *exc):
        self.reg.stop()
        self.thief.stop()


def nothing_reached(thief):
    check(not thief.with_authorization(), "credentials reached the other origin: %s",
          thief.with_authorization())


def link_elsewhere(ctx, auth):
    with Servers(ctx, auth) as (reg, thief):
        reg.tag_lists["app"] = reg.link_to(thief.url + "/v2/app/tags/list?n=1")
        reg.catalog = reg.link_to(thief.url + "/v2/_catalog?last=first&n=1")
        for args, what in ((["list-tags", reg.host + "/app"], "listing tags of app"),
                           (["catalog", reg.host], "listing the catalog")):
            r = run(ctx, args + CREDS)
            fails(ctx, r, "PROTOCOL", what, thief.url, "pagination never leaves the registry",
                  seconds=10)
            check("stolen" not in r.out, "entries of the other origin were listed: %r", r)
        check(reg.requests(pattern="/tags/list") and reg.requests(pattern="/_catalog"),
              "the registry itself was not asked: %s", reg.requests())
        for path in ("/tags/list", "/_catalog"):
            check(any(x.authorization for x in reg.requests("GET", path)),
                  "the registry's own %s went without credentials: %s", path, reg.requests())
        check(not thief.requests(), "the other origin was asked: %s", thief.requests())
        nothing_reached(thief)


@scenario(weight=2)
def hostile_link_other_origin_basic(ctx):
    link_elsewhere(ctx, "basic")


@scenario(weight=2)
def hostile_link_other_origin_bearer(ctx):
    link_elsewhere(ctx, "bearer")


@scenario(weight=4)
def hostile_upload_location_other_origin(ctx):
    """The destination answers the upload POST with a Location on another
    origin: the blob goes there (the registry chose where to keep it) but
    no Authorization does; the registry's own requests keep theirs."""
    src, _ = ctx.shared("small")
    with Servers(ctx, "basic") as (reg, thief):
        reg.upload_location = lambda repo, n: "%s/uploads/%s/%d" % (thief.url, repo, n)
        img = {"src": src.host + "/project-a/app:v1.0", "dst": reg.host + "/x/app:v1.0"}
        regs = {src.host: src.lua_options(),
                reg.host: {"username": hostile.USER, "password_env": PW_ENV, "insecure": True}}
        r, results, _ = ctx.copy([img], registries=regs, env=ENV, timeout=120)
        res = results.get(img["src"] + " -> " + img["dst"])
        check(r.status == 0 and res and res["ok"], "the copy failed: %r", r)
        puts = thief.requests("PUT")
        check(puts, "no blob went to the upload Location: %s", thief.requests())
        nothing_reached(thief)
        check(reg.requests("PUT", "/manifests/v1.0") and
              all(x.authorization for x in reg.requests("PUT", "/manifests/")),
              "the manifest did not reach the registry with credentials: %s", reg.requests())
        ctx.note("%d blob PUTs to the other origin, none with credentials", len(puts))


@scenario(weight=2)
def hostile_redirect_other_origin(ctx):
    """Blob downloads redirected (307) to another origin, as to a storage
    back end: the blobs come from there and no Authorization goes along;
    the registry's own requests keep theirs."""
    with Servers(ctx, "basic") as (reg, thief):
        img = hostile.image_of(reg.config_blob(), [reg.add_blob(b"layer-%d" % i) for i in range(3)])
        reg.add_manifest(img, hostile.OCI_MANIFEST, "app", "v1")
        for d, data in reg.blobs.items():
            thief.served["/storage/" + d] = data
        reg.blob_redirect = lambda d: "%s/storage/%s" % (thief.url, d)
        dst = ctx.tmp("dst")
        r = run(ctx, ["replicate", reg.host + "/app:v1", "oci:%s:v1" % dst, "--no-progress",
                      "--config", creds_file(ctx, reg)])
        check(r.signal is None and r.status == 0, "the copy failed: %r", r)
        got = thief.requests("GET", "^/storage/")
        check(len(got) >= 4, "the blobs did not come from the other origin: %s", thief.requests())
        nothing_reached(thief)
        check(all(x.authorization for x in reg.requests("GET", "/blobs/")),
              "the registry's own blob requests went without credentials: %s",
              reg.requests("GET", "/blobs/"))


def creds_file(ctx, reg, ca=None):
    """A sync file that gives reg's credentials (and CA) to replicate --config."""
    path = os.path.join(ctx.tmp("cfg"), "creds.yaml")
    with open(path, "w") as f:
        f.write("version: 1\nregistries:\n  h:\n    host: \"%s\"\n"
                "    credentials: { username: %s, password_env: %s }\n"
                % (reg.host, hostile.USER, PW_ENV))
        if ca:
            f.write("    tls: { ca_file: \"%s\" }\n" % ca)
    return path


@scenario(weight=4)
def hostile_https_never_continues_over_http(ctx):
    """An HTTPS registry handing over plain-HTTP URLs (next page, upload
    Location, blob redirect, token realm), each on loopback where plain HTTP
    is otherwise allowed: every one is refused with an error saying so, and
    nothing at all reaches the plain-HTTP listener."""
    tls = harness_registry.make_tls_material(ctx.tmp("tls"))
    cert = (tls["server_cert"], tls["server_key"])
    ca = ["--ca-file", tls["ca"]]
    for auth in ("basic", "bearer"):
        with Servers(ctx, auth, tls=cert) as (reg, thief):
            if auth == "bearer":
                reg.realm = thief.url + "/token"  # a plain-HTTP token service
                reg.tag_lists["app"] = lambda q: (["v1"], None)
                r = run(ctx, ["list-tags", reg.host + "/app"] + CREDS + ca)
                fails(ctx, r, "PROTOCOL", "plain-HTTP token service", seconds=10)
                check(not thief.requests(), "the plain-HTTP realm was asked: %s",
                      thief.requests())
                continue
            reg.tag_lists["app"] = reg.link_to(thief.url + "/v2/app/tags/list?n=1")
            r = run(ctx, ["list-tags", reg.host + "/app"] + CREDS + ca)
            fails(ctx, r, "PROTOCOL", "plain HTTP from an HTTPS registry", seconds=10)
            img = hostile.image_of(reg.config_blob(), [reg.add_blob(b"layer")])
            reg.add_manifest(img, hostile.OCI_MANIFEST, "app", "v1")
            reg.blob_redirect = lambda d: "%s/storage/%s" % (thief.url, d)
            dst = ctx.tmp("dst")
            r = run(ctx, ["replicate", reg.host + "/app:v1", "oci:%s:v1" % dst, "--no-progress",
                          "--config", creds_file(ctx, reg, tls["ca"])])
            fails(ctx, r, "PROTOCOL", "plain HTTP from an HTTPS registry", seconds=20)
            # the registry as a destination, its upload Location plain HTTP
            reg.blob_redirect = None
            reg.upload_location = lambda repo, n: "%s/uploads/%s/%d" % (thief.url, repo, n)
            src = ctx.tmp("src")
            r = run(ctx, ["replicate", reg.host + "/app:v1", "oci:%s:v1" % src, "--no-progress",
                          "--config", creds_file(ctx, reg, tls["ca"])])
            check(r.status == 0, "copying the image out failed: %r", r)
            r = run(ctx, ["replicate", "oci:%s:v1" % src, reg.host + "/copy:v1", "--no-progress",
                          "--config", creds_file(ctx, reg, tls["ca"])])
            fails(ctx, r, "PROTOCOL", "upload Location", "plain HTTP from an HTTPS registry",
                  seconds=20)
            check(not thief.requests(), "the plain-HTTP listener was asked: %s", thief.requests())


@scenario(weight=2)
def hostile_link_loop(ctx):
    with Servers(ctx) as (reg, _):
        reg.tag_lists["loop"] = reg.self_link()
        reg.catalog = reg.self_link()
        r = run(ctx, ["list-tags", reg.host + "/loop"])
        fails(ctx, r, "PROTOCOL", "pagination loop", seconds=10)
        check(len(reg.requests("GET", "/tags/list")) == 1, "the loop was followed: %d pages",
              len(reg.requests("GET", "/tags/list")))
        r = run(ctx, ["catalog", reg.host])
        fails(ctx, r, "PROTOCOL", "pagination loop", seconds=10)


@scenario(weight=6)
def hostile_endless_pages(ctx):
    """A fresh next page every time, 1,000 tags each: the listing stops at
    max_list_entries (100,000) without growing further."""
    with Servers(ctx) as (reg, _):
        reg.tag_lists["endless"] = reg.endless("/v2/endless/tags/list")
        r = run(ctx, ["list-tags", reg.host + "/endless"])
        fails(ctx, r, "TOO_LARGE", "max_list_entries", "100000")
        pages = len(reg.requests("GET", "/tags/list"))
        check(pages <= 101, "%d pages read for 100,000 entries", pages)
        # both bounds are registry options (fl.registry, sync files)
        for opt, want_pages in (("max_list_pages = 5", 5), ("max_list_entries = 2500", 3)):
            before = len(reg.requests("GET", "/tags/list"))
            r = ctx.lua("""
local reg = assert(fl.registry("%s", { %s }))
local tags, msg, code = reg:tags("endless")
print(msg, code)
""" % (reg.host, opt), timeout=60)
            name = opt.split()[0]
            check(name in r.out and "TOO_LARGE" in r.out, "%s: want TOO_LARGE naming it: %r",
                  opt, r)
            got = len(reg.requests("GET", "/tags/list")) - before
            check(got == want_pages, "%s: %d pages read, want %d", opt, got, want_pages)


@scenario(weight=8)
def hostile_huge_tag_list(ctx):
    """1,000,000 tags in one 10 MB page (a registry ignoring n=): list-tags
    and replicate --repository both stop at max_list_entries, in bounds; the
    plan is never built."""
    with Servers(ctx) as (reg, _):
        reg.tag_lists["huge"] = reg.one_page(["t%07d" % i for i in range(1000000)])
        r = run(ctx, ["list-tags", reg.host + "/huge"])
        fails(ctx, r, "TOO_LARGE", "max_list_entries")
        dst = ctx.tmp("dst")
        r = run(ctx, ["replicate", "--source", reg.host, "--destination", "oci:" + dst,
                      "--repository", "huge", "--no-progress"])
        check(r.signal is None and r.status in (1, 2), "want a clean failure: %r", r)
        check("max_list_entries" in r.err + r.out, "the error does not name max_list_entries: %r",
              r)
        bounded(ctx, r)
        check(not reg.requests(pattern="/manifests/"), "manifests were fetched: %d",
              len(reg.requests(pattern="/manifests/")))


@scenario(weight=10)
def hostile_index_fanout(ctx):
    """An index naming the same 3.8 MB manifest 20,000 times: the child is
    fetched once, and the copy completes (it is a valid image) in bounds."""
    with Servers(ctx) as (reg, _):
        child = hostile.case_fanout(reg)
        dst = ctx.tmp("dst")
        r = run(ctx, ["replicate", reg.host + "/fanout:v1", "oci:%s:v1" % dst, "--no-progress"],
                timeout=150)
        check(r.signal is None and r.status == 0, "the copy failed: %r", r)
        gets = reg.requests("GET", "/manifests/" + child)
        check(len(gets) == 1, "the child was fetched %d times", len(gets))
        bounded(ctx, r)


@scenario(weight=6)
def hostile_index_wide(ctx):
    """An index of 20,000 distinct children fails before fetching any:
    max_image_manifests (1000)."""
    with Servers(ctx) as (reg, _):
        hostile.case_wide(reg)
        dst = ctx.tmp("dst")
        r = run(ctx, ["replicate", reg.host + "/wide:v1", "oci:%s:v1" % dst, "--no-progress"])
        fails(ctx, r, "TOO_LARGE", "max_image_manifests", "wide:")
        n = len(reg.requests("GET", "/manifests/sha256:"))
        check(n <= 1, "%d children fetched before the bound was applied", n)


@scenario(weight=10)
def hostile_deep_nesting(ctx):
    """Indexes nested 8 deep fail as too deep; a tree 3 levels deep and 30
    wide (27,931 manifests) stops at max_image_manifests after ~1,000
    GETs, not 27,931."""
    with Servers(ctx) as (reg, _):
        hostile.case_chain(reg)
        hostile.case_tree(reg)
        dst = ctx.tmp("dst")
        r = run(ctx, ["replicate", reg.host + "/chain:v1", "oci:%s:chain" % dst, "--no-progress"])
        fails(ctx, r, "INVALID", "nest too deeply")
        before = len(reg.requests("GET", "/manifests/"))
        r = run(ctx, ["replicate", reg.host + "/tree:v1", "oci:%s:tree" % dst, "--no-progress"])
        fails(ctx, r, "TOO_LARGE", "max_image_manifests")
        n = len(reg.requests("GET", "/manifests/")) - before
        check(n <= 1100, "%d manifest GETs for a bound of 1000", n)
        ctx.note("%d manifest GETs", n)


@scenario(weight=10, timeout=240)
def hostile_many_layers_first_blob_fails(ctx):
    """43,000 layers, the first one's blob answers 404 and every other blob
    is served slowly (50 ms): the failure takes the rest of the image's
    blobs off the queue, so only those already in flight are asked for."""
    with Servers(ctx) as (reg, _):
        digests = hostile.case_layers(reg)
        reg.blob_delay = 0.05
        dst = ctx.tmp("dst")
        r = run(ctx, ["replicate", reg.host + "/layers:v1", "oci:%s:v1" % dst, "--no-progress"],
                timeout=200)
        fails(ctx, r, "NOT_FOUND", digests[0])
        n = len(reg.requests("GET", "/blobs/"))
        check(n <= 100, "%d blob GETs after the first blob failed (of 43,000)", n)
        ctx.note("%d blob GETs", n)


@scenario(weight=2)
def hostile_oversize_token(ctx):
    """A 10 KiB bearer token: refused at once as TOO_LARGE (it could never be
    sent), not fetched again and again."""
    with Servers(ctx, "bearer", token_size=10 * 1024) as (reg, _):
        reg.tag_lists["app"] = lambda q: (["v1"], None)
        r = run(ctx, ["list-tags", reg.host + "/app"] + CREDS)
        fails(ctx, r, "TOO_LARGE", "8191-byte limit", seconds=10)
        n = len(reg.requests("GET", "^/token"))
        check(n <= 2, "%d token requests", n)


@scenario(weight=3)
def hostile_token_realm_origin(ctx):
    """A token realm on another origin gets the Basic credentials by default
    (as Docker sends them); auth_realm_strict refuses it before anything is
    sent there, unless auth_realms lists it."""
    with Servers(ctx, "bearer") as (reg, thief):
        authsrv = hostile.Hostile()  # serves /token, records
        try:
            reg.realm = authsrv.url + "/token"
            reg.tag_lists["app"] = lambda q: (["v1"], None)
            script = """
local fl = require("freightliner")
local json = require("freightliner.json")
local opts = json.decode(arg[1])
local reg = assert(fl.registry(opts.host, opts.options))
local tags, msg, code = reg:tags("app")
print(json.encode({ tags = tags or json.null, msg = msg or json.null, code = code or json.null }))
"""
            base = {"username": hostile.USER, "password_env": PW_ENV, "insecure": True}

            def tags(extra):
                o = dict(base, **extra)
                r = ctx.lua(script, json.dumps({"host": reg.host, "options": o}), env=ENV,
                            timeout=60)
                lines = r.json_lines()
                check(lines, "no result: %r", r)
                return lines[-1]
            out = tags({})
            check(out["tags"] == ["v1"], "default: want the tags: %s", out)
            got = authsrv.requests("GET", "^/token")
            check(got and got[0].authorization and got[0].authorization.startswith("Basic "),
                  "default: the realm did not get the Basic credentials: %s", got)
            n = len(authsrv.requests())
            out = tags({"auth_realm_strict": True})
            check(out["code"] == "DENIED" and "auth_realm_strict" in out["msg"],
                  "strict: want DENIED naming auth_realm_strict: %s", out)
            check(len(authsrv.requests()) == n, "strict: the realm was asked: %s",
                  authsrv.requests()[n:])
            out = tags({"auth_realm_strict": True, "auth_realms": [authsrv.url]})
            check(out["tags"] == ["v1"], "strict + auth_realms: want the tags: %s", out)
            # the same through a sync file, as the CLI reads it
            n = len(authsrv.requests())
            cfg = os.path.join(ctx.tmp("cfg"), "sync.yaml")
            with open(cfg, "w") as f:
                f.write("version: 1\nregistries:\n  h:\n    host: \"%s\"\n"
                        "    credentials: { username: %s, password_env: %s }\n"
                        "    auth_realm_strict: true\n"
                        "sync:\n  - source: { registry: h, repository: app }\n"
                        "    destination: { registry: \"oci:%s\" }\n"
                        % (reg.host, hostile.USER, PW_ENV, ctx.tmp("dst")))
            r = run(ctx, ["sync", "--config", cfg])
            check(r.signal is None and r.status == 1, "sync: want exit 1: %r", r)
            check("auth_realm_strict" in r.out + r.err, "sync: the error does not name "
                  "auth_realm_strict: %r", r)
            check(len(authsrv.requests()) == n, "sync: the realm was asked: %s",
                  authsrv.requests()[n:])
            nothing_reached(thief)
        finally:
            authsrv.stop()


def sanitized(binary):
    """A sanitizer build reserves terabytes of shadow address space: an
    address-space cap cannot apply to it."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(lib in out for lib in ("libasan", "libtsan", "libubsan", "libmsan"))


@scenario(weight=8, timeout=240)
def hostile_memory_cap(ctx):
    """Under a low address-space cap (RLIMIT_AS, as ulimit -v), sources that
    force large allocations end in a clean error and exit 1, never a signal:
    a 10 MB tag page of 1,000,000 entries (its JSON needs ~100 MB), and the
    20,000-fold index (a 4 MB index and a 4 MB child, parsed), at caps from
    where the allocations fail to where they just succeed."""
    if sanitized(e2e.BIN):
        raise e2e.Skip("%s is a sanitizer build; an address-space cap cannot apply" % e2e.BIN)
    with Servers(ctx) as (reg, _):
        reg.tag_lists["huge"] = reg.one_page(["t%07d" % i for i in range(1000000)])
        hostile.case_fanout(reg)
        r = run(ctx, ["list-tags", reg.host + "/huge"], address_space=100 << 20)
        fails(ctx, r, "NOMEM", "out of memory", "listing tags of huge")
        outcomes = []
        for cap_mib in (110, 150, 260):
            dst = ctx.tmp("dst")
            r = run(ctx, ["replicate", reg.host + "/fanout:v1", "oci:%s:v1" % dst,
                          "--no-progress", "--parallel-workers", "2"],
                    address_space=cap_mib << 20, timeout=150)
            check(r.signal is None, "replicate died of signal %s under %d MiB: %r", r.signal,
                  cap_mib, r)
            check(r.status in (0, 1), "replicate: exit %s under %d MiB: %r", r.status, cap_mib, r)
            if r.status == 1:
                check("(NOMEM)" in r.out + r.err, "under %d MiB: want NOMEM: %r", cap_mib, r)
            outcomes.append("%d MiB: %s" % (cap_mib, "ok" if r.status == 0 else "NOMEM"))
        ctx.note("fanout: %s", ", ".join(outcomes))
        check(any(o.endswith("NOMEM") for o in outcomes),
              "no cap made an allocation fail; the scenario tests nothing: %s", outcomes)


# ---- escaped output and names-as-data (#18, built in the CLI and the planner) ----

@scenario(weight=3)
def hostile_control_character_tags(ctx):
    """Tags with ESC, BEL, CR and LF are printed escaped by list-tags (text)
    and as JSON escapes (--format json)."""
    evil = ["ok", "t\x1b]0;pwned\x07", "x\r\n0 images replicated, 0 up to date, 0 failed",
            "clear\x1b[2J"]
    with Servers(ctx) as (reg, _):
        reg.tag_lists["ctrl"] = lambda q: (evil, None)
        r = run(ctx, ["list-tags", reg.host + "/ctrl"])
        check(r.status == 0, "list-tags failed: %r", r)
        for c in ("\x1b", "\x07", "\r"):
            check(c not in r.out and c not in r.err, "a raw %r reached the terminal: %r", c, r)
        check(len(r.out.splitlines()) == len(evil), "a tag forged a line: %r", r.out)
        r = run(ctx, ["list-tags", reg.host + "/ctrl", "--format", "json"])
        check(r.status == 0, "list-tags --format json failed: %r", r)
        check(sorted(json.loads(r.out)["tags"]) == sorted(evil), "JSON does not round-trip: %r",
              r.out)


@scenario(weight=4)
def hostile_digest_like_tags(ctx):
    """A tag list naming `x@sha256:...`: it is not a tag (refused or skipped
    by name), never re-read as a reference; nothing is written beside the
    destination layout, and --exclude-tag x excludes exactly the tag x."""
    with Servers(ctx) as (reg, _):
        img = reg.add_manifest(hostile.image_of(reg.config_blob(), [reg.add_blob(b"l")]),
                               hostile.OCI_MANIFEST, "attag", "x")
        bad = "x@" + img["digest"]
        reg.manifests[("attag", bad)] = reg.manifests[img["digest"]]
        reg.tag_lists["attag"] = lambda q: ([bad, "x"], None)
        parent = ctx.tmp("dst")
        layout = os.path.join(parent, "layout9")
        run(ctx, ["replicate", "--source", reg.host, "--destination", "oci:" + layout,
                  "--repository", "attag", "--no-progress"])
        check(sorted(os.listdir(parent)) in ([], ["layout9"]),
              "something was written beside the layout: %s", os.listdir(parent))
        layout2 = os.path.join(parent, "layout10")
        r = run(ctx, ["replicate", "--source", reg.host, "--destination", "oci:" + layout2,
                      "--repository", "attag", "--exclude-tag", "x", "--no-progress"])
        check(r.signal is None, "died of a signal: %r", r)
        idx = os.path.join(layout2, "index.json")
        names = []
        if os.path.exists(idx):
            with open(idx) as f:
                names = [m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                         for m in json.load(f).get("manifests", [])]
        check(not any(n and n.endswith("x") for n in names),
              "tag x was written despite --exclude-tag x: %s", names)


if __name__ == "__main__":
    e2e.standalone(__file__)
