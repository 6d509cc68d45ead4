--- ratelimited_mirror.lua: mirror politely from a rate-limited registry.
--
--   freightliner run scripts/examples/ratelimited_mirror.lua SRC_REGISTRY DST_REGISTRY PATTERN [RPS]
--
-- For registries with Docker Hub-like pull limits: at most RPS requests per
-- second (default 5) and 2 requests in flight to the source; an image that
-- still fails with RATE_LIMITED, UNREACHABLE or SERVER is retried by this
-- policy with exponential backoff (1 s, 2 s, 4 s) before it counts as
-- failed. Prints the source's remaining pull quota when it tells it.
local src, dst, pattern, rps = arg[1], arg[2], arg[3], tonumber(arg[4] or "5")
if not src or not dst or not pattern then
  io.stderr:write("usage: ratelimited_mirror.lua SRC_REGISTRY DST_REGISTRY PATTERN [RPS]\n")
  return 2
end
local src_options = { requests_per_second = rps, max_concurrency = 2 }
fl.registry_options(src, src_options)

local retryable = { RATE_LIMITED = true, UNREACHABLE = true, SERVER = true, TIMEOUT = true }
local hooks = {
  retry = function(failure)
    if retryable[failure.code] and failure.attempt <= 3 then
      local delay = 2 ^ (failure.attempt - 1)
      io.stderr:write(string.format("retrying %s in %d s: %s\n", failure.image, delay, failure.message))
      return delay
    end
  end,
}
-- the same options table: the listing goes through the copies' endpoint
local plan = assert(fl.replicate.plan{ source = src, destination = dst, pattern = pattern,
                                       source_options = src_options })
local summary = fl.replicate.run(plan, { parallel = 2, hooks = hooks })
fl.replicate.print_summary(summary)
-- the stats of the endpoint the copies used (fl.copy's store cache), not
-- of a fresh one that made no request
local stats = assert(fl.endpoint(src)):stats()
if stats.ratelimit_remaining then
  print(string.format("source pull quota remaining: %d of %d", stats.ratelimit_remaining, stats.ratelimit_limit or -1))
end
return summary.status
