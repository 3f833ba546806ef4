-- A different request each time, in turn: the lines of BENCH_REQUESTS_FILE, each
-- "METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY" (TOKEN and BODY may be empty: no Authorization header, no
-- body). Made by bench/cases.py: an owner reading their own case, a receipt with its tail, a page
-- of an approver's queue. The requests are built once in init(), so wrk only picks the next one;
-- each wrk thread starts at its own place in the list.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

local requests_ = {}
local next_request = 0
local threads_made = 0

function setup(thread)
  thread:set("thread_index", threads_made)
  threads_made = threads_made + 1
end

function init(args)
  for _, line in ipairs(common.read_lines(os.getenv("BENCH_REQUESTS_FILE"))) do
    local method, path, token, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
    local headers = common.headers()
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    if body == "" then body = nil else headers["Content-Type"] = "application/json" end
    requests_[#requests_ + 1] = wrk.format(method, path, headers, body)
  end
  next_request = ((thread_index or 0) * 7919) % #requests_
end

function request()
  next_request = next_request % #requests_ + 1
  return requests_[next_request]
end

done = common.report
