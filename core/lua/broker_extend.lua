-- The broker's heartbeat: push one consumer's reservation deadlines to now + visibility, but
-- never past reservation + timeout + visibility, so a task its worker hangs on is redelivered
-- even while the cluster lives.
-- KEYS: reserved, reserved-at.
-- ARGV[1]: consumer id; ARGV[2]: visibility seconds; ARGV[3]: task timeout seconds.
-- Returns the number of reservations extended.
-- include: clock
local prefix = ARGV[1] .. '|'
local n = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, string.len(prefix)) == prefix then
    local since = tonumber(redis.call('HGET', KEYS[2], member) or now)
    local vis = tonumber(ARGV[2])
    local deadline = math.min(now + vis, since + tonumber(ARGV[3]) + vis)
    redis.call('ZADD', KEYS[1], 'XX', deadline, member)
    n = n + 1
  end
end
return n
