-- wrk script for POST /predict.
--   MODE=hit   every request has the same prefix (after the first, all hits)
--   MODE=miss  every request has a unique prefix (first feature = a counter)
-- At the end it prints one line: RESULT <req/s> <p50 us> <p99 us> <errors>
local mode = os.getenv("MODE") or "hit"
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

local function body(first)
  local v = {tostring(first), "1", "1", "1"}
  for i = 5, 32 do v[i] = "0" end
  return '{"features":[[' .. table.concat(v, ",") .. ']]}'
end

local headers = {["Content-Type"] = "application/json"}
local fixed = body(1)

function request()
  if mode == "miss" then
    counter = counter + 1
    return wrk.format("POST", "/predict", headers, body(thread_id * 100000000 + counter + 1))
  end
  return wrk.format("POST", "/predict", headers, fixed)
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.1f %d %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), errors))
end
