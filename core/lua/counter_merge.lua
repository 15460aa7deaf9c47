-- Merge an old push counter into the new one the new code started before the migration ran:
-- the old value is added to it, atomically, and the old key goes.
-- KEYS[1]: the old counter; KEYS[2]: the new counter.
-- ARGV: none.
-- Returns 'merged', or 'gone' when the old counter no longer exists (expired meanwhile).
local old = redis.call('GETDEL', KEYS[1])
if not old then return 'gone' end
redis.call('INCRBY', KEYS[2], old)
return 'merged'
