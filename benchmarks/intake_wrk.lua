-- wrk script for benchmarks/intake.py (`--driver wrk`): sends each pre-signed WeCom callback
-- exactly once, then stops.
--
--   wrk -t1 -c32 -d60s --timeout 30s -s benchmarks/intake_wrk.lua URL -- ITEMS_FILE
--
-- ITEMS_FILE holds two lines per callback: "path?query" and the body (neither has a newline).
-- With more than one thread (-t), thread k of n sends items k, k+n, k+2n, ...
-- wrk runs for a fixed duration, so this script keeps the connections idle once every item is
-- handed out (delay() returns an hour), stops its thread when every request it sent has been
-- answered, and with one thread (-t1) interrupts wrk's main thread (SIGINT, which wrk handles as
-- "finish now"); with several threads wrk runs its full -d. done() prints one JSON line that benchmarks/intake.py parses: the time from
-- the first request to the last answer, latency percentiles (ms), status counts and wrk's errors.

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
  int getpid(void);
  int kill(int pid, int sig);
]])
local CLOCK_MONOTONIC = 1
local SIGINT = 2
local ts = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

-- setup/done phase (wrk's main Lua state) ------------------------------------------------------

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
end

-- running phase (one Lua state per wrk thread) ------------------------------------------------

thread_index = 1
thread_total = 1
items = {}
handed = 0     -- items sent so far
reserved = 0   -- delay() calls that promised an item to their connection
answered = 0   -- responses received
unreserved = 0 -- request() calls delay() did not announce (1 per thread: wrk's probe)
statuses = {}
first_sent = 0
last_answer = 0
finished = false
idle_request = nil

function init(args)
  local path = args[1]
  local total = tonumber(args[2] or "1")
  thread_total = total
  local lines = {}
  for l in io.lines(path) do
    lines[#lines + 1] = l
  end
  local headers = { ["Content-Type"] = "text/xml" }
  local k = 0
  for i = 1, #lines - 1, 2 do
    k = k + 1
    if (k - 1) % total == thread_index - 1 then
      items[#items + 1] = wrk.format("POST", lines[i], headers, lines[i + 1])
    end
  end
  idle_request = wrk.format("GET", "/bench-wrk-idle", {})
end

function delay()
  if handed + reserved >= #items then
    return 3600000
  end
  reserved = reserved + 1
  return 0
end

function request()
  if reserved == 0 or handed >= #items then
    -- Not announced by delay(): wrk 4.1 calls request() once per thread before connecting
    -- (and that request is never sent), and again on a reconnect after a socket error.
    unreserved = unreserved + 1
    return idle_request or wrk.format("GET", "/bench-wrk-idle", {})
  end
  if first_sent == 0 then
    first_sent = now()
  end
  reserved = reserved - 1
  handed = handed + 1
  return items[handed]
end

function response(status, headers, body)
  answered = answered + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if not finished and handed >= #items and answered >= handed then
    finished = true
    last_answer = now()
    wrk.thread:stop()
    if thread_total == 1 then
      -- with several threads the others may still be sending: wrk then runs its full duration
      ffi.C.kill(ffi.C.getpid(), SIGINT)
    end
  end
end

-- done phase -----------------------------------------------------------------------------------

function done(summary, latency, requests)
  local first, last = nil, 0
  local counts = {}
  local n, extras, unfinished = 0, 0, 0
  for _, t in ipairs(threads) do
    local f = t:get("first_sent")
    local l = t:get("last_answer")
    if f and f > 0 and (first == nil or f < first) then
      first = f
    end
    if l and l > last then
      last = l
    end
    if not t:get("finished") then
      unfinished = unfinished + 1
    end
    n = n + (t:get("handed") or 0)
    extras = extras + (t:get("unreserved") or 0)
    for k, v in pairs(t:get("statuses") or {}) do
      counts[k] = (counts[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(counts) do
    parts[#parts + 1] = string.format('"%s": %d', k, v)
  end
  local e = summary.errors
  io.write(string.format(
    '{"took": %.6f, "sent_items": %d, "unreserved": %d, "unfinished_threads": %d, "completed": %d, '
      .. '"p50": %.3f, "p99": %.3f, "max": %.3f, "statuses": {%s}, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    (first and last > 0) and (last - first) or (summary.duration / 1e6),
    n, extras, unfinished, summary.requests,
    latency:percentile(50.0) / 1000, latency:percentile(99.0) / 1000, latency.max / 1000,
    table.concat(parts, ", "),
    e.connect, e.read, e.write, e.status, e.timeout
  ))
end
