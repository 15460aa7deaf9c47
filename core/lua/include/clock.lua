-- The time by Redis's clock, in seconds with microseconds: every due time, bucket and window
-- is measured with it, so hosts with skewed clocks agree. Included where a script needs `now`.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
