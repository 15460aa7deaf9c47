-- P1's yardstick (bench/reference.py): the push's irreducible Redis work in one round trip.
-- Refuses a revoked token, counts, and queues the message with its count.
-- KEYS: the token's revocation key, the user's counter, the queue (one hash tag: one slot).
-- ARGV: the message JSON without its request_count.
-- Returns {'revoked'} or {'queued', count}.
-- include: counted
if redis.call('EXISTS', KEYS[1]) == 1 then return {'revoked'} end
local count = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[3], counted(ARGV[1], count))
return {'queued', count}
