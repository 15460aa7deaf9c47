-- Defers items by a delay of Redis time (the validator's 4 s retry): no worker waits for them.
-- KEYS: later (sorted set), wake. ARGV: delay in seconds, then the members.
-- Returns {'wake_in', seconds} when a drain must be scheduled, or {'scheduled'} when one is
-- already due by then.
-- include: clock
-- include: wake_schedule
local due = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], due, ARGV[i]) end
local wait = wake_schedule(KEYS[2], due, now)
if wait then return {'wake_in', wait} end
return {'scheduled'}
