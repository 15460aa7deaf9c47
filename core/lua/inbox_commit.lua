-- Applies a drain's outcome atomically, and only while the caller still holds the lease, so a
-- drain whose lease ran out can never remove items that a newer drain has not handled. The
-- batch's take counts go with it.
-- KEYS: lease, list, later, dead, takes.
-- ARGV: lease token, items to trim from the list's head, count of later members to remove,
-- count of later members to add, the removed members, then (score, member) pairs to add, then
-- dead-letter entries.
-- Returns 'committed', or 'lease_lost' (nothing changed).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lease_lost' end
local trim, removed, added = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if trim > 0 then
  for _, text in ipairs(redis.call('LRANGE', KEYS[2], 0, trim - 1)) do
    redis.call('HDEL', KEYS[5], redis.sha1hex(text))
  end
  redis.call('LTRIM', KEYS[2], trim, -1)
end
local i = 5
for _ = 1, removed do
  redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('HDEL', KEYS[5], redis.sha1hex(ARGV[i]))
  i = i + 1
end
for _ = 1, added do redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
while i <= #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]); i = i + 1 end
return 'committed'
