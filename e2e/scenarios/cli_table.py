#!/usr/bin/env python3
"""The CLI's contract, case by case, through the real binary against real
registries: each case is a command line with its expected exit status
(0 done, 1 images failed or would fail, 2 usage or configuration error,
130/143 interrupted) and a fragment of its message, and no case ever shows
a traceback. Plus: JSON logs and metrics fit for monitoring (run id on
every line, in the metrics file and the checkpoint), and names with control
characters from a registry printed escaped everywhere."""
import http.server
import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
import verify  # noqa: E402
from e2e import check, scenario  # noqa: E402


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", ctype="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class NotARegistry(_Quiet):
    """An HTTP server that is not a registry: 404 for everything."""
    def do_GET(self):
        self.reply(404, b"<html>not here</html>", "text/html")
    do_HEAD = do_GET


EVIL_TAGS = ["ok", "\x1b]0;pwned\x07", "x\r\n0 images replicated, 0 up to date, 0 failed", "\x9b2J"]


class EvilRegistry(_Quiet):
    """A registry whose tag list carries terminal control characters; every
    manifest is unknown."""
    def do_GET(self):
        v2 = [("Docker-Distribution-API-Version", "registry/2.0")]
        if self.path in ("/v2/", "/v2"):
            self.reply(200, b"{}", headers=v2)
        elif self.path.startswith("/v2/_catalog"):
            self.reply(200, json.dumps({"repositories": ["evil/app"]}).encode(), headers=v2)
        elif self.path.startswith("/v2/evil/app/tags/list"):
            self.reply(200, json.dumps({"name": "evil/app", "tags": EVIL_TAGS}).encode(), headers=v2)
        else:
            body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
            self.reply(404, body.encode(), headers=v2)
    do_HEAD = do_GET


def serve(ctx, handler):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ctx.log("%s on 127.0.0.1:%d", handler.__name__, srv.server_address[1])
    return srv, "127.0.0.1:%d" % srv.server_address[1]


def write(ctx, name, text):
    path = os.path.join(ctx.tmp("files"), name)
    with open(path, "w") as f:
        f.write(text)
    return path


SYNC = """version: 1
registries:
  src: {{ host: "{src}" }}
  dst: {{ host: "{dst}" }}
sync:
  - source: {{ registry: src, repository: project-a/app }}
    destination: {{ registry: dst, prefix: pol }}
    policy: {policy}
"""

TRACEBACK = re.compile(r"stack traceback|\.lua:\d+: in ")


def run_case(ctx, case, failures):
    name, argv, want, fragment = case[:4]
    opts = case[4] if len(case) > 4 else {}
    r = ctx.fl(*argv, input=opts.get("input"), timeout=opts.get("timeout", 120))
    text = r.out + r.err
    problems = []
    if r.status != want:
        problems.append("exit %d, want %d" % (r.status, want))
    for frag in ([fragment] if isinstance(fragment, str) else fragment):
        if frag not in text:
            problems.append("no %r in the output" % frag)
    for frag in opts.get("absent", []):
        if frag in text:
            problems.append("%r in the output" % frag)
    if TRACEBACK.search(text) and not opts.get("traceback_ok"):
        problems.append("a traceback")
    if "check" in opts:
        p = opts["check"](r)
        if p:
            problems.append(p)
    if problems:
        failures.append("%s: %s [stdout %r stderr %r]" % (name, "; ".join(problems), r.out[-300:], r.err[-400:]))
    return r


@scenario(weight=25, timeout=400)
def cli_table(ctx):
    src, _ = ctx.shared("small")
    dst = ctx.registry()
    S, D = src.host, dst.host
    www_srv, W = serve(ctx, NotARegistry)
    missing = os.path.join(ctx.tmp("oci"), "no", "such", "dir")
    empty = write(ctx, "empty.yaml", "")
    pols = {}
    for n, body in [("not_function", "return { rename = 42 }"),
                    ("returns_number", "return { rename = function(repo, tag) return 42 end }"),
                    ("raises", "return { filter = function(t) error('oops') end }"),
                    ("bad_name", "return { rename = function(repo, tag) return 'Bad/Name', tag end }"),
                    ("typo", "return { renam = function(repo, tag) return repo, tag end }")]:
        pol = write(ctx, n + ".lua", body)
        pols[n] = write(ctx, n + ".yaml", SYNC.format(src=S, dst=D, policy=pol))
    http_sync = write(ctx, "http.yaml", """version: 1
registries:
  src: {{ host: "http://{src}" }}
  dst: {{ host: "http://{dst}" }}
sync:
  - source: {{ registry: src, repository: project-b/tool }}
    destination: {{ registry: dst, prefix: viahttp }}
    tags: {{ include: ["v1.0"] }}
""".format(src=S, dst=D))
    two = write(ctx, "two.yaml", """version: 1
registries:
  src: {{ host: "{src}" }}
  dst: {{ host: "{dst}" }}
sync:
  - source: {{ registry: src, repository: project-b/tool }}
    destination: {{ registry: dst, prefix: two }}
    tags: {{ include: ["v1.0"] }}
  - source: {{ registry: src, repository_pattern: "nothing/*" }}
    destination: {{ registry: dst, prefix: two }}
""".format(src=S, dst=D))
    no_version = write(ctx, "noversion.ckpt", json.dumps({"format": "freightliner-checkpoint", "images": {}}))

    def dry_json_errors(r):
        try:
            doc = json.loads(r.out)
        except ValueError:
            return "stdout is not one JSON document"
        t = doc.get("totals", {})
        if t.get("errors") != 1 or not any(a.get("action") == "error" for a in doc.get("actions", [])):
            return "totals %s" % t
        return None

    def copied(repo, tag):
        def c(r):
            return None if dst.head_manifest(repo, tag) == 200 else "%s:%s is not at the destination" % (repo, tag)
        return c

    def not_created(r):
        return "%s was created" % missing if os.path.exists(os.path.dirname(missing)) else None

    cases = [
        # dry runs count errors and exit as the run would
        ("dry run of a missing tag", ["replicate", S + "/project-a/app:nope", D + "/x/app:nope", "--dry-run"],
         1, ["project-a/app:nope", "HTTP 404 (not found)", "1 error;"]),
        ("dry run JSON totals", ["replicate", S + "/project-a/app:nope", D + "/x/app:nope", "--dry-run",
                                 "--format", "json"], 1, '"errors":1', {"check": dry_json_errors}),
        ("dry run of a good image", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1.0", "--dry-run"],
         0, ["1 to copy", "0 errors"]),
        # http://host wherever a registry is accepted
        ("http:// source, dry run", ["replicate", "--source", "http://" + S, "--destination", D,
                                     "--repository", "project-a/web", "--dry-run"], 0, "4 to copy"),
        ("http:// list-tags", ["list-tags", "http://%s/project-a/app" % S], 0, "v1.0"),
        ("http:// inspect", ["inspect", "http://%s/project-a/app:v1.0" % S], 0, "sha256:"),
        ("http:// image, one image copied", ["replicate", "http://%s/project-a/app:v1.0" % S,
                                             "http://%s/http/app:v1.0" % D], 0, "1 image replicated",
         {"check": copied("http/app", "v1.0")}),
        ("http:// replicate-tree, dry run", ["replicate-tree", "http://%s/project-b" % S,
                                             "http://%s/tree/project-b" % D, "--dry-run"], 0, "5 to copy"),
        ("http:// hosts in a sync file", ["sync", "--config", http_sync], 0, "1 image replicated",
         {"check": copied("viahttp/project-b/tool", "v1.0")}),
        # selections that select nothing
        ("pattern matching nothing", ["replicate", "--source", S, "--destination", D,
                                      "--repository-pattern", "nomatch/*"], 0, "matched no repository"),
        ("pattern without /*, --strict", ["replicate", "--source", S, "--destination", D,
                                          "--repository-pattern", "project-a", "--strict"], 1,
         "use 'project-a/*'"),
        ("tree prefix with nothing under it", ["replicate-tree", S + "/nothing", D + "/x"], 0,
         "under the prefix 'nothing'"),
        ("tree prefix, --strict", ["replicate-tree", S + "/nothing", D + "/x", "--strict"], 1,
         "an error under --strict"),
        ("sync entry selecting nothing, --strict", ["sync", "--config", two, "--strict"], 1,
         ["sync entry 2: the repository pattern 'nothing/*' matched no repository", "1 image replicated"],
         {"check": copied("two/project-b/tool", "v1.0")}),
        # malformed references, platforms and flag values: exit 2 before any transfer
        ("platform without an architecture", ["replicate", "--platform", "linux", S + "/project-a/app:v1.0",
                                              D + "/x/app:v1"], 2, "'linux' is not a platform"),
        ("upper-case repository", ["replicate", S + "/Team/App", D + "/x/y:1"], 2, "must be lowercase"),
        ("tag with a colon", ["replicate", S + "/app:bad:tag", D + "/x/y:1"], 2, "invalid tag"),
        ("digest without a repository", ["replicate", "@sha256:abc", D + "/x/y:1"], 2, "invalid reference"),
        ("registries without repositories", ["replicate", S, D], 2, "is a registry, not an image"),
        ("list-tags of a registry", ["list-tags", S], 2, "is a registry, not a repository"),
        ("--parallel 0", ["replicate", "--source", S, "--destination", D, "--repository", "x",
                          "--parallel", "0"], 2, "needs a whole number from 1 to 256"),
        ("--parallel beyond the engine's limit", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1",
                                                  "--parallel", "100000"], 2, "from 1 to 256"),
        ("--metrics-file in a missing directory", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1",
                                                   "--metrics-file", missing + "/m.json"], 2,
         "does not exist"),
        # no flag accepted and ignored
        ("single image + --checkpoint-file", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1",
                                              "--checkpoint-file", os.path.join(ctx.tmp("x"), "c")], 2,
         "--checkpoint-file does not apply"),
        ("single image + --dest-prefix", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1",
                                          "--dest-prefix", "m"], 2, "--dest-prefix does not apply"),
        ("single image + --tag-filter", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1",
                                         "--tag-filter", "v*"], 2, "--tag-filter does not apply"),
        ("replicate-tree + --dest-prefix", ["replicate-tree", S + "/project-a", D + "/t", "--dest-prefix", "m"],
         2, "--dest-prefix does not apply to replicate-tree"),
        ("inspect --platform of one image", ["inspect", S + "/project-a/app:v1.0", "--platform", "linux/amd64"],
         2, "is one image, not an index"),
        ("--dry-run + --checkpoint-file", ["sync", "--config", http_sync, "--dry-run", "--checkpoint-file",
                                           os.path.join(ctx.tmp("x"), "d.ckpt")], 2,
         "--checkpoint-file does not apply to --dry-run"),
        ("--format json without --dry-run", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1",
                                             "--format", "json"], 2, "--log-format json"),
        ("--format yaml", ["replicate", S + "/project-a/app:v1.0", D + "/x/app:v1", "--dry-run",
                           "--format", "yaml"], 2, "unknown --format 'yaml'"),
        ("empty sync file", ["sync", "--config", empty], 2, "no sync entries"),
        ("empty file, validate-config", ["validate-config", empty], 2, "no sync entries"),
        ("misspelled flag", ["replicate", "--tag-filer", "v*"], 2, "did you mean '--tag-filter'?"),
        ("misspelled command", ["replicat"], 2, "did you mean 'replicate'?"),
        ("--lua-dir after the command", ["version", "--lua-dir", "/tmp"], 2, "--lua-dir must come before"),
        # global options before or after the command
        ("--log-format after the command", ["list-tags", S + "/project-a/app", "--log-format", "json"], 0,
         "v1.0"),
        ("--no-progress before the command", ["--no-progress", "replicate", S + "/project-a/app:v1.1",
                                              D + "/x/app:v1.1"], 0, "1 image replicated"),
        ("--parallel-workers alias", ["replicate", S + "/project-a/app:v2.0", D + "/x/app:v2.0",
                                      "--parallel-workers", "2"], 0, "1 image replicated"),
        # messages that point at the fix
        ("not a registry", ["replicate", W + "/team/app:v1", D + "/x/y:1"], 1,
         "does not look like a container registry"),
        ("missing OCI layout", ["replicate", "oci:%s:t" % missing, D + "/x/y:1"], 1, "does not exist",
         {"check": not_created}),
        ("platform not in the index", ["replicate", "--platform", "linux/s390x", S + "/project-a/multi:v1",
                                       D + "/x/m:v1"], 1, "it has: linux/amd64, linux/arm64/v8, linux/arm/v7"),
        ("missing repository", ["replicate", "--source", S, "--destination", D, "--repository",
                                "no/such-repo"], 1, "NAME_UNKNOWN"),
        ("resume of a missing file", ["resume", os.path.join(ctx.tmp("x"), "none.ckpt")], 2,
         "cannot open checkpoint"),
        ("resume: both forms", ["resume", "a", "--checkpoint-file", "b"], 2, "resume takes one checkpoint"),
        ("checkpoint without a version", ["resume", no_version], 2, "has no format version"),
        # policies checked at the boundary, naming file and hook
        ("policy hook not a function", ["sync", "--config", pols["not_function"]], 2,
         "'rename' must be a function"),
        ("policy hook not a function, validate-config", ["validate-config", pols["not_function"]], 2,
         "'rename' must be a function"),
        ("policy hook returns a number", ["sync", "--config", pols["returns_number"]], 2,
         ["returns_number.lua", "hook 'rename' must return a repository name"]),
        # a hook that raises fails its image (POLICY, the policy's file and
        # line named); the others go on: exit 1, as the run would
        ("policy hook raises", ["sync", "--config", pols["raises"], "--dry-run"], 1,
         ["raises.lua:", "policy hook filter raised", "oops"]),
        ("policy renames to a bad name", ["sync", "--config", pols["bad_name"]], 2,
         "not a valid reference"),
        ("policy hook misspelled", ["validate-config", pols["typo"]], 2, "did you mean 'rename'?"),
        # smaller
        ("piped REPL stops at the first error", ["repl"], 1, "boom",
         {"input": "print('one')\nerror('boom')\nprint('two')\n", "absent": ["two"], "traceback_ok": True}),
        ("sync --force in help", ["help", "sync"], 0, ["--force", "--strict", "130"]),
        ("exit codes in --help", ["--help"], 0, ["143", "usage or configuration error"]),
        ("version takes no arguments", ["version", "extra"], 2, "takes no arguments"),
    ]
    failures = []
    for case in cases:
        run_case(ctx, case, failures)
    www_srv.shutdown()
    # nothing of the refused runs reached the destination
    got = sorted(r for r in dst.catalog())
    check(got == ["http/app", "two/project-b/tool", "viahttp/project-b/tool", "x/app"],
          "the destination has %s, want only http/app, two/project-b/tool, viahttp/project-b/tool and x/app "
          "(the refused runs must write nothing)", got)
    check(dst.tags("x/app") == ["v1.1", "v2.0"], "x/app tags: %s", dst.tags("x/app"))
    check(not failures, "%d of %d cases failed:\n  %s", len(failures), len(cases), "\n  ".join(failures))
    ctx.note("%d cases", len(cases))


@scenario(weight=8)
def cli_json_logs_and_metrics(ctx):
    src, images = ctx.shared("small")
    dst = ctx.registry()
    d = ctx.tmp("json")
    metrics, cp = os.path.join(d, "m.json"), os.path.join(d, "c.ckpt")
    r = ctx.fl("--log-format", "json", "replicate", "--source", src.host, "--destination", dst.host,
               "--repository", "project-a/app", "--repository", "no/such-repo", "--exclude-tag", "*.sig",
               "--metrics-file", metrics, "--checkpoint-file", cp, "--no-progress")
    check(r.status == 1, "a run with a missing repository: exit %d, want 1: %r", r.status, r)
    check(r.out == "", "stdout is not empty (only requested output goes there): %r", r.out)
    lines = r.err.splitlines()
    docs = []
    for line in lines:
        try:
            docs.append(json.loads(line))
        except ValueError:
            raise e2e.Failure("a stderr line is not JSON: %r" % line)
    run_ids = {doc.get("run_id") for doc in docs}
    check(len(run_ids) == 1 and "" not in run_ids and None not in run_ids, "run ids: %s", run_ids)
    run_id = run_ids.pop()
    want = sorted(i["tag"] for i in images if i["repository"] == "project-a/app" and not i["tag"].endswith(".sig"))
    done = [doc for doc in docs if doc.get("result") == "copied"]
    check(sorted(doc["image"].rsplit(":", 1)[1] for doc in done) == want,
          "per-image lines: %s, want one for each of %s", [doc.get("image") for doc in done], want)
    failed = [doc for doc in docs if doc.get("code") and "no/such-repo" in doc.get("message", "")]
    check(failed, "no JSON line for the missing repository: %s", docs)
    summary = [doc for doc in docs if doc.get("summary")]
    check(len(summary) == 1 and summary[0]["images_replicated"] == len(want) and summary[0]["status"] == 1
          and summary[0]["images_skipped_by_filter"] == 1, "summary line: %s", summary)
    with open(metrics) as f:
        text = f.read()
    check(text.count("\n") == 1 and text.endswith("\n"), "the metrics file is not one line: %r", text[:200])
    m = json.loads(text)
    check(m["run_id"] == run_id, "metrics run id %s, log run id %s", m["run_id"], run_id)
    check(m["images_replicated"] == len(want) and m["images_skipped_by_filter"] == 1
          and m["started_at"] and m["finished_at"], "metrics: %s", m)
    check([f["code"] for f in m["failed_images"]] == ["NOT_FOUND"]
          and "no/such-repo" in m["failed_images"][0]["image"], "failed_images: %s", m["failed_images"])
    check(list(m["destinations"]) == [dst.host + "/project-a/app"], "destinations: %s", list(m["destinations"]))
    with open(cp) as f:
        c = json.load(f)
    check(c.get("run_id") == run_id, "checkpoint run id %s, log run id %s", c.get("run_id"), run_id)
    # text logs: one line per image at info
    r = ctx.fl("replicate", "--source", src.host, "--destination", dst.host, "--repository", "project-a/web",
               "--no-progress")
    n = len([i for i in images if i["repository"] == "project-a/web"])
    check(r.status == 0 and r.out == "" and r.err.count(" info ") == n
          and "%d images replicated" % n in r.err, "text run of %d images: %r", n, r)
    # two destinations of one source are two keys
    r = ctx.fl("replicate", "--source", src.host, "--destination", dst.host, "--repository", "project-b/tool",
               "--dest-prefix", "one", "--metrics-file", metrics, "--tag-filter", "v1.0")
    with open(metrics) as f:
        m = json.load(f)
    check(r.status == 0 and list(m["destinations"]) == [dst.host + "/one/project-b/tool"], "metrics: %s", m)


@scenario(weight=6)
def cli_safe_output(ctx):
    srv, E = serve(ctx, EvilRegistry)
    dst = ctx.registry()
    raw = re.compile("[\x00-\x08\x0b-\x1f\x7f\x9b]")
    r = ctx.fl("list-tags", E + "/evil/app")
    check(r.status == 0, "list-tags of the evil registry: %r", r)
    check(not raw.search(r.out + r.err), "list-tags printed a raw control character: %r", r.out)
    check("\\e]0;pwned\\x07" in r.out and "\\x9b2J" in r.out, "list-tags escapes: %r", r.out)
    check(len(r.out.splitlines()) == len(EVIL_TAGS), "a tag forged a line: %r", r.out)
    r = ctx.fl("list-tags", E + "/evil/app", "--format", "json")
    check(r.status == 0 and sorted(json.loads(r.out)["tags"]) == sorted(EVIL_TAGS),
          "list-tags --format json: %r", r)
    # JSON escapes what JSON must (C0); U+009B is legal JSON text
    check(not re.search("[\x00-\x1f]", r.out.rstrip("\n")), "JSON output has a raw control character: %r", r.out)
    for args, what in [(["--dry-run"], "dry run"), ([], "run"), (["--log-format", "json"], "JSON run")]:
        r = ctx.fl("replicate", "--source", E, "--destination", dst.host, "--repository", "evil/app",
                   "--no-progress", *args)
        check(r.status in (1, 2), "%s against the evil registry: exit %d: %r", what, r.status, r)
        text = (r.out + r.err).replace("\n", "")
        if "--log-format" in args:
            text = text.replace("\x9b", "")  # legal in JSON text
        check(not raw.search(text), "%s printed a raw control character: %r %r", what, r.out[-500:], r.err[-500:])
        check("0 images replicated, 0 up to date, 0 failed\n" not in r.out + r.err,
              "%s: a tag forged a summary line", what)
        if "--log-format" in args:
            for line in r.err.splitlines():
                json.loads(line)
    srv.shutdown()
    check(dst.catalog() == [], "the destination has %s", dst.catalog())


if __name__ == "__main__":
    e2e.standalone(__file__)
