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
-- include: in_slices
-- The takes hash is keyed by the items' texts (see inbox_take).
if trim > 0 then
  local head = redis.call('LRANGE', KEYS[2], 0, trim - 1)
  in_slices('HDEL', KEYS[5], head, 1, #head)
  redis.call('LTRIM', KEYS[2], trim, -1)
end
in_slices('ZREM', KEYS[3], ARGV, 5, 4 + removed)
in_slices('HDEL', KEYS[5], ARGV, 5, 4 + removed)
local i = 5 + removed
for _ = 1, added do redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
in_slices('RPUSH', KEYS[4], ARGV, i, #ARGV)
return 'committed'
