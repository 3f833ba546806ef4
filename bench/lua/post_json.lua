-- A fixed JSON POST: the body from the file BENCH_BODY_FILE (written by bench/run.py), the path
-- from BENCH_PATH, other headers (an Authorization: Bearer token, say) from BENCH_HEADERS.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers = common.headers()
wrk.headers["Content-Type"] = "application/json"
wrk.body = common.read_file(os.getenv("BENCH_BODY_FILE"))

done = common.report
