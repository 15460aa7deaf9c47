-- Extends a lease only if the caller still owns it (a drain's heartbeat).
-- KEYS: lease. ARGV: owner token, new lifetime in ms. Returns 'extended' or 'not_owner'.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'extended'
end
return 'not_owner'
