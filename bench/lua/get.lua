-- A fixed request, built once: BENCH_METHOD (GET), BENCH_PATH, BENCH_HEADERS ("Name: value" lines).
-- With no request() function wrk sends the same bytes every time, its cheapest way.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers = common.headers()

done = common.report
