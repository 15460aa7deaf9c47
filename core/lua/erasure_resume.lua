-- Resume a failed erasure: compare-and-set on its record, so `failed` becomes `running` once,
-- however many operators resume it at the same moment.
-- KEYS[1]: the erasure's record (hash with `status`, `user_id`, `finished`, `reason`).
-- ARGV: none.
-- Returns the erased user's id, or false when the erasure is not a failed one.
local user_id = redis.call('HGET', KEYS[1], 'user_id')
if redis.call('HGET', KEYS[1], 'status') ~= 'failed' or not user_id then return false end
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HDEL', KEYS[1], 'finished', 'reason')
return user_id
