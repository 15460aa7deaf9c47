-- Reserve a login attempt's place in sliding windows, atomically, so concurrent attempts
-- cannot all slip under a limit. Redis's clock, so that every web process agrees.
-- KEYS: one sorted set of attempts (scored by ms) per window.
-- ARGV[1]: this attempt's id; then ARGV[2 * i], ARGV[2 * i + 1]: the limit and the window
-- (ms) of KEYS[i].
-- Returns 0 when the attempt fits every window (it is then counted in each), else the ms
-- until the fullest one has room again (and nothing is counted).
-- include: clock
local now_ms = math.floor(now * 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local frees = oldest[2] and tonumber(oldest[2]) + window or now_ms + window
    wait = math.max(wait, frees - now_ms, 1)
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now_ms, ARGV[1])
  redis.call('PEXPIRE', key, ARGV[2 * i + 1])
end
return 0
