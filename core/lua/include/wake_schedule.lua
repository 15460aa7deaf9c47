-- Makes sure one drain is scheduled for `due` (Redis time): the wake key remembers the time
-- of the drain on its way. Returns the seconds until the drain must run, as a string, or
-- false when one is already due by then.
local function wake_schedule(wake, due, now)
  local scheduled = tonumber(redis.call('GET', wake))
  if scheduled and scheduled >= now and scheduled <= due + 0.001 then return false end
  local wait = math.max(due - now, 0)
  redis.call('SET', wake, string.format('%.6f', due), 'EX', math.ceil(wait) + 60)
  return string.format('%.6f', wait)
end
