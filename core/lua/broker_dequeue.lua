-- The broker's dequeue: promote due delayed tasks to `ready`, return expired reservations to
-- the front of `ready`, then reserve the next batch for one consumer, so two clusters never
-- take the same task. A task handed out more than the maximum without an acknowledgement is
-- set aside in `dead` with its payload instead.
-- KEYS: ready, delayed, reserved, tasks, deliveries, dead, reserved-at.
-- ARGV[1]: max to take; ARGV[2]: visibility seconds; ARGV[3]: consumer id;
-- ARGV[4]: max deliveries.
-- Returns a flat list: reservation member (`<consumer id>|<task id>`), task, member, task...
-- include: clock
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('RPUSH', KEYS[1], id)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[3], member)
  redis.call('HDEL', KEYS[7], member)
  local id = string.match(member, '|(.*)$')
  if redis.call('HEXISTS', KEYS[4], id) == 1 then
    redis.call('LPUSH', KEYS[1], id)
  end
end
local ids = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if not ids then return {} end
local out = {}
for _, id in ipairs(ids) do
  local task = redis.call('HGET', KEYS[4], id)
  if task then
    local deliveries = redis.call('HINCRBY', KEYS[5], id, 1)
    if deliveries > tonumber(ARGV[4]) then
      -- Handed out again and again, never acknowledged: set aside with its payload.
      redis.call('RPUSH', KEYS[6], cjson.encode({id = id, task = task, deliveries = deliveries - 1,
        error = 'delivered ' .. (deliveries - 1) .. ' times without an acknowledgement'}))
      redis.call('HDEL', KEYS[4], id)
      redis.call('HDEL', KEYS[5], id)
    else
      local member = ARGV[3] .. '|' .. id
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), member)
      redis.call('HSET', KEYS[7], member, now)
      table.insert(out, member)
      table.insert(out, task)
    end
  end
end
return out
