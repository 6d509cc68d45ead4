--- freightliner serve --config FILE: run the sync file as a service.
local args = require("freightliner.args")
local runner = require("freightliner.runner")

local usage = [[usage: freightliner serve --config FILE [--listen HOST:PORT] [--state-dir DIR]
                          [--api-key-file FILE] [--metrics-listen HOST:PORT]
                          [--tls-cert FILE --tls-key FILE] [--cors-origin ORIGIN]...
                          [--timeout S] [--max-connections N] [--max-body BYTES]
                          [--max-queued N] [--max-kept N] [--audit-log FILE]
                          [--parallel N] [--hook FILE]
                          [--webhook URL]... [--webhook-secret-file FILE]
                          [--probe-interval S]

Runs the sync entries of FILE on their schedules (interval: 15m or a cron
schedule:) and serves an HTTP API (default 127.0.0.1:8080):
  GET  /healthz, /readyz, /metrics       no key needed (/readyz: config
                                         loaded, state writable, registries
                                         answering TCP, --probe-interval 15)
  GET  /api/v1/jobs[?limit=&offset=]     jobs, oldest first
  POST /api/v1/jobs                      {"sync": NAME} or a sync entry's fields
  GET  /api/v1/jobs/ID                   state, counters, failures
  DELETE /api/v1/jobs/ID                 cancel that job
  GET  /api/v1/syncs                     the sync entries and their next run
  POST /api/v1/sync/NAME/run             run an entry now
  POST /api/v1/reload                    reload the config and the keys
/api/ needs 'Authorization: Bearer KEY'; keys come from --api-key-file (one
per line) and FREIGHTLINER_API_KEYS (comma-separated). SIGHUP reloads the
config and the keys; SIGTERM stops (the running job resumes at the next
start). Job state lives in --state-dir (default ./freightliner-state).
--hook FILE: a Lua file returning { job = function(request, info) ... end }
that may veto a job (return false, "reason") or adjust its request (return
a new table) before it runs; reloaded with the config.
--webhook URL: one JSON POST per finished run, signed with
X-Freightliner-Signature: sha256=HMAC when a secret is given
(--webhook-secret-file, or FREIGHTLINER_WEBHOOK_SECRET), retried with backoff.

exit status: 0 stopped by SIGTERM/SIGINT, 2 usage or configuration error.]]

local spec = {
  { name = "config", value = true }, { name = "listen", value = true },
  { name = "metrics-listen", value = true }, { name = "state-dir", value = true },
  { name = "api-key-file", value = true }, { name = "tls-cert", value = true },
  { name = "tls-key", value = true }, { name = "cors-origin", value = true, multi = true },
  { name = "timeout", value = true, number = true, min = 1 },
  { name = "max-connections", value = true, number = true, min = 1 },
  { name = "max-body", value = true, number = true, min = 1 },
  { name = "max-queued", value = true, number = true, min = 1 },
  { name = "max-kept", value = true, number = true, min = 1 },
  { name = "audit-log", value = true },
  { name = "parallel", value = true, number = true, min = 1 },
  { name = "hook", value = true },
  { name = "webhook", value = true, multi = true }, { name = "webhook-secret-file", value = true },
  { name = "probe-interval", value = true, number = true, min = 0 },
}

return {
  summary = "run sync entries on schedules behind an HTTP API with metrics",
  usage = usage,
  run = function(argv)
    local o, err = args.parse(argv, spec)
    if not o then return runner.usage_error(err, "serve") end
    if not o.config or o[1] then return runner.usage_error("serve needs --config FILE", "serve") end
    return require("freightliner.serve").run({
      config = o.config, listen = o.listen or "127.0.0.1:8080", metrics_listen = o["metrics-listen"],
      state_dir = o["state-dir"] or "freightliner-state", api_key_file = o["api-key-file"],
      tls_cert = o["tls-cert"], tls_key = o["tls-key"], cors = o["cors-origin"] or {},
      timeout = o.timeout, max_connections = o["max-connections"], max_body = o["max-body"],
      max_queued = o["max-queued"], max_kept = o["max-kept"], audit_log = o["audit-log"],
      parallel = o.parallel, hook = o.hook, webhooks = o.webhook or {},
      webhook_secret_file = o["webhook-secret-file"], probe_interval = o["probe-interval"],
    })
  end,
}
