-- freightliner.shard: the partition a sharded run keeps (--shard INDEX/COUNT).
-- Real runs of N shards against registries: scripts/test-shard.sh.
local shard = require("freightliner.shard")

-- A plan shaped as replicate.plan returns it: repositories x tags.
local function plan_of(repos)
  local p = { source = "src:5000", items = {}, skipped = {}, errors = {} }
  for repo, ntags in pairs(repos) do
    for t = 1, ntags do
      local tag = "v" .. t
      p.items[#p.items + 1] = { repository = repo, tag = tag, src = "src:5000/" .. repo .. ":" .. tag,
                                dst = "dst:5000/" .. repo .. ":" .. tag,
                                key = "src:5000/" .. repo .. ":" .. tag .. " -> dst" }
    end
    p.skipped[#p.skipped + 1] = { src = "src:5000/" .. repo .. ":old", reason = "tag filter" }
  end
  return p
end

local function copy_plan(p)
  local c = { source = p.source, items = {}, skipped = {}, errors = {} }
  for k, v in pairs(p) do if type(v) == "table" then c[k] = table.move(v, 1, #v, 1, {}) end end
  return c
end

describe("freightliner.shard", function()
  local core = require("freightliner.core")
  local level
  setup(function()
    level = require("freightliner.log").level()
    core.log.set_level("warn") -- apply() logs its part at info
  end)
  teardown(function() core.log.set_level(level) end)

  describe("fnv1a64", function()
    it("matches the published FNV-1a 64 test vectors", function()
      assert.equal("cbf29ce484222325", string.format("%016x", shard.fnv1a64("")))
      assert.equal("af63dc4c8601ec8c", string.format("%016x", shard.fnv1a64("a")))
      assert.equal("85944171f73967e8", string.format("%016x", shard.fnv1a64("foobar")))
    end)
    it("takes the hash as unsigned 64-bit modulo COUNT (values from an independent implementation)", function()
      assert.is_true(shard.fnv1a64("a") < 0) -- 0xaf63dc4c8601ec8c does not fit a signed integer
      assert.equal(5, shard.of("a", 7))
      assert.equal(1, shard.of("team/app", 3))
      assert.equal(3, shard.of("fleet/repo-00", 8))
      assert.equal(1, shard.of("project-a/app:v1.0", 5))
      assert.equal(902, shard.of("library/alpine", 1000))
      assert.equal(0, shard.of("anything", 1))
    end)
    it("spreads keys over every shard", function()
      local seen = {}
      for i = 1, 400 do seen[shard.of("team/repo-" .. i, 8)] = (seen[shard.of("team/repo-" .. i, 8)] or 0) + 1 end
      for i = 0, 7 do assert.is_true((seen[i] or 0) > 25, "shard " .. i .. " got " .. tostring(seen[i])) end
    end)
  end)

  describe("parse", function()
    it("reads INDEX/COUNT, 0-based", function()
      assert.same({ index = 0, count = 1, split_tags = shard.DEFAULT_SPLIT_TAGS }, shard.parse("0/1"))
      assert.same({ index = 3, count = 4, split_tags = 10 }, shard.parse(" 3 / 4 ", 10))
    end)
    it("names what is wrong", function()
      local cases = {
        { "4/4", "INDEX must be 0 to 3" }, { "1/0", "COUNT must be at least 1" },
        { "1", "not INDEX/COUNT" }, { "-1/4", "not INDEX/COUNT" }, { "a/b", "not INDEX/COUNT" },
        { "1/2/3", "not INDEX/COUNT" }, { "", "not INDEX/COUNT" },
      }
      for _, c in ipairs(cases) do
        local s, err = shard.parse(c[1])
        assert.is_nil(s, c[1])
        assert.truthy(err:find(c[2], 1, true), err)
      end
    end)
  end)

  describe("resolve", function()
    local function env(t) return function(k) return t[k] end end
    it("is nil when nothing asks for a shard", function()
      local s, err = shard.resolve({}, env({}))
      assert.is_nil(s)
      assert.is_nil(err)
    end)
    it("takes --shard first, then --shard-count with JOB_COMPLETION_INDEX, then FREIGHTLINER_SHARD", function()
      local e = env({ JOB_COMPLETION_INDEX = "2", FREIGHTLINER_SHARD = "1/5" })
      assert.same({ 0, 2 }, (function(s) return { s.index, s.count } end)(shard.resolve({ shard = "0/2" }, e)))
      local s = shard.resolve({ ["shard-count"] = 3 }, e)
      assert.same({ 2, 3 }, { s.index, s.count })
      s = shard.resolve({ ["shard-split-tags"] = 7 }, e)
      assert.same({ 1, 5, 7 }, { s.index, s.count, s.split_tags })
    end)
    it("refuses contradictions and a missing or bad index", function()
      local cases = {
        { { shard = "0/2", ["shard-count"] = 2 }, {}, "exclude each other" },
        { { ["shard-count"] = 2 }, {}, "needs JOB_COMPLETION_INDEX" },
        { { ["shard-count"] = 2 }, { JOB_COMPLETION_INDEX = "x" }, "not a whole number" },
        { { ["shard-count"] = 2 }, { JOB_COMPLETION_INDEX = "2" }, "INDEX must be 0 to 1" },
        { {}, { FREIGHTLINER_SHARD = "9" }, "FREIGHTLINER_SHARD: shard '9' is not INDEX/COUNT" },
        { { ["shard-split-tags"] = 4 }, {}, "needs --shard" },
      }
      for _, c in ipairs(cases) do
        local s, err = shard.resolve(c[1], env(c[2]))
        assert.is_nil(s)
        assert.truthy(err and err:find(c[3], 1, true), tostring(err))
      end
    end)
  end)

  describe("apply", function()
    local repos = {}
    for i = 1, 30 do repos["team/repo-" .. i] = 1 + i % 4 end
    repos["team/huge"] = 40

    it("partitions: every item in exactly one of COUNT shards, skipped and errors too", function()
      local whole = plan_of(repos)
      whole.errors = { { repository = "team/broken", message = "listing", code = "SERVER" } }
      for _, count in ipairs({ 1, 2, 3, 8 }) do
        local owner, skips, errs = {}, 0, 0
        for index = 0, count - 1 do
          local p = shard.apply(copy_plan(whole), { index = index, count = count, split_tags = 10 })
          assert.equal(#whole.items, p.shard.planned)
          assert.equal(#p.items, p.shard.kept)
          for _, it in ipairs(p.items) do
            assert.is_nil(owner[it.key], it.key .. " in two shards")
            owner[it.key] = index
          end
          skips, errs = skips + #p.skipped, errs + #p.errors
        end
        for _, it in ipairs(whole.items) do assert.is_not_nil(owner[it.key], it.key .. " in no shard") end
        assert.equal(#whole.skipped, skips)
        assert.equal(1, errs)
      end
    end)

    it("keeps a repository in one shard unless it has more than split_tags tags", function()
      local whole = plan_of(repos)
      local where = {}
      for index = 0, 3 do
        local p = shard.apply(copy_plan(whole), { index = index, count = 4, split_tags = 10 })
        assert.same({ "team/huge" }, p.shard.split)
        for _, it in ipairs(p.items) do
          where[it.repository] = where[it.repository] or {}
          where[it.repository][index] = true
        end
      end
      for repo, shards in pairs(where) do
        local n = 0
        for _ in pairs(shards) do n = n + 1 end
        if repo == "team/huge" then
          assert.equal(4, n, "40 tags over 4 shards should reach every shard")
        else
          assert.equal(1, n, repo .. " was split")
        end
      end
    end)

    it("is deterministic: the same plan gives the same part", function()
      local a = shard.apply(plan_of(repos), { index = 1, count = 3, split_tags = 10 })
      local b = shard.apply(plan_of(repos), { index = 1, count = 3, split_tags = 10 })
      local ka, kb = {}, {}
      for _, it in ipairs(a.items) do ka[#ka + 1] = it.key end
      for _, it in ipairs(b.items) do kb[#kb + 1] = it.key end
      table.sort(ka)
      table.sort(kb)
      assert.same(ka, kb)
    end)
  end)
end)
