-- POST /api/v1/auth/sms-code with a phone no other request of the run uses: 1, BENCH_PHONE_DIGIT
-- (3-9), the wrk thread's number (0-9), then eight digits counting up from BENCH_PHONE_START.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

local threads = 0
function setup(thread)
  thread:set("thread_number", threads % 10)
  threads = threads + 1
end

local path = os.getenv("BENCH_PATH") or "/api/v1/auth/sms-code"
local headers = common.headers()
headers["Content-Type"] = "application/json"
local prefix = "1" .. (os.getenv("BENCH_PHONE_DIGIT") or "3")
local counter = tonumber(os.getenv("BENCH_PHONE_START") or "0")

function request()
  counter = counter + 1
  local phone = string.format("%s%d%08d", prefix, thread_number, counter % 100000000)
  return wrk.format("POST", path, headers, '{"phone":"' .. phone .. '"}')
end

done = common.report
