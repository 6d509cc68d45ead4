--- promotion_policy.lua: the policy of promotion.yaml.
--
-- Plan-time hooks (run while the plan is built, before any copy):
--   filter(image)      -> keep?, reason   image = { registry, repository, tag }
--   rename(repo, tag)  -> repo, tag       (after the template)
-- Run-time hooks (run as each image finishes):
--   retry(failure)     -> seconds | nil   failure = { image, source,
--                                          destination, message, code, attempt }
--   on_done(result)    result.source, result.destination, result.digest, ...
--   on_error(failure)  the same record as retry gets
-- A hook that raises marks that image failed (code POLICY) with this file
-- and line in the message; the run still ends with its summary.

-- Approved versions, e.g. from a change ticket; PROMOTE_DENY names tags that
-- must not go (for the CI check of this example).
local deny = {}
for tag in (os.getenv("PROMOTE_DENY") or ""):gmatch("[^,%s]+") do deny[tag] = true end

return {
  filter = function(image)
    if deny[image.tag] then return false, "not approved for production" end
    return true
  end,
  retry = function(failure)
    if failure.code == "RATE_LIMITED" or failure.code == "UNREACHABLE" then
      if failure.attempt < 3 then return 2 ^ failure.attempt end
    end
  end,
  on_done = function(result)
    io.stderr:write(string.format("promoted %s -> %s (%s)\n", result.source, result.destination, result.digest))
  end,
  on_error = function(failure)
    io.stderr:write(string.format("NOT promoted %s (attempt %d): %s [%s]\n", failure.image, failure.attempt,
      failure.message, failure.code))
  end,
}
