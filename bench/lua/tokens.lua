-- One request per caller, in turn: the bearer tokens are the lines of BENCH_TOKENS_FILE (one
-- session each, made by bench/run.py before the run) and, when BENCH_BODIES_FILE is set, line i
-- of it is the JSON body sent with token i (a citizen booking their own slot, say). The requests
-- are built once in init(), so wrk only picks the next one.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH")
local requests_ = {}
local next_request = 0

function init(args)
  local tokens = common.read_lines(os.getenv("BENCH_TOKENS_FILE"))
  local bodies = os.getenv("BENCH_BODIES_FILE") and common.read_lines(os.getenv("BENCH_BODIES_FILE"))
  for i, token in ipairs(tokens) do
    local headers = common.headers()
    headers["Authorization"] = "Bearer " .. token
    local body = nil
    if bodies then
      body = bodies[(i - 1) % #bodies + 1]
      headers["Content-Type"] = "application/json"
    end
    requests_[#requests_ + 1] = wrk.format(method, path, headers, body)
  end
end

function request()
  next_request = next_request % #requests_ + 1
  return requests_[next_request]
end

done = common.report
