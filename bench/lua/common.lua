-- Shared by the scenario scripts (wrk, LuaJIT). bench/run.py sets BENCH_LUA_DIR so that
-- `require("common")` finds this file, and reads the BENCH_RESULT line done() prints.
local M = {}

-- "Name: value" lines of BENCH_HEADERS, as a table for wrk.format / wrk.headers
function M.headers()
  local headers = {}
  for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name] = value end
  end
  return headers
end

function M.read_file(path)
  local file = assert(io.open(path, "rb"))
  local content = file:read("*a")
  file:close()
  return content
end

-- the non-empty lines of a file (tokens, bodies: one per request kind, rotated)
function M.read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if #line > 0 then lines[#lines + 1] = line end
  end
  return lines
end

-- one JSON line with wrk's own counts and its latency percentiles, in microseconds
function M.report(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

return M
