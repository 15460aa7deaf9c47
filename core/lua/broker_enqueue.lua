-- The broker's enqueue: store a task, and make it ready now or due after a delay (by Redis's
-- clock).
-- KEYS: tasks, ready, delayed.
-- ARGV[1]: task id; ARGV[2]: the signed task; ARGV[3]: delay seconds (<= 0: ready now).
-- Returns 'ready' or 'delayed'.
-- include: clock
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local delay = tonumber(ARGV[3])
if delay <= 0 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 'ready'
end
redis.call('ZADD', KEYS[3], now + delay, ARGV[1])
return 'delayed'
