-- wrk script: POST a small JSON message with the bearer token from the environment.
local token = os.getenv("BENCH_TOKEN")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"message": "benchmark message HelloWorld"}'
