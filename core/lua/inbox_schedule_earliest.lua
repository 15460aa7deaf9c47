-- Makes sure a drain is scheduled for the earliest deferred item.
-- KEYS: later (sorted set), wake.
-- Returns {'wake_in', seconds}, {'scheduled'} when a drain is on its way already, or
-- {'empty'} when nothing is deferred.
-- include: clock
-- include: wake_schedule
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return {'empty'} end
local wait = wake_schedule(KEYS[2], tonumber(first[2]), now)
if wait then return {'wake_in', wait} end
return {'scheduled'}
