-- Hands a chain of queue tasks on to its next link, once: only the link holding the chain's
-- token may (or any link, once the key has lapsed). A link delivered twice, as a stalled
-- cluster's reserved tasks are, finds the token moved on and ends, instead of doubling the
-- chain for good.
-- KEYS: the chain. ARGV: this link's token, the next link's token, lifetime in seconds.
-- Returns 'advanced' or 'not_owner'.
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 'not_owner' end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 'advanced'
