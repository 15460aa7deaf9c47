-- Put back what one consumer holds: its reservations go, and each task still stored returns
-- to the front of `ready`.
-- KEYS: ready, reserved, tasks, reserved-at.
-- ARGV[1]: consumer id.
-- Returns the number of tasks returned to `ready`.
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
local prefix = ARGV[1] .. '|'
local n = 0
for _, member in ipairs(members) do
  if string.sub(member, 1, string.len(prefix)) == prefix then
    redis.call('ZREM', KEYS[2], member)
    redis.call('HDEL', KEYS[4], member)
    local id = string.sub(member, string.len(prefix) + 1)
    if redis.call('HEXISTS', KEYS[3], id) == 1 then
      redis.call('LPUSH', KEYS[1], id)
      n = n + 1
    end
  end
end
return n
