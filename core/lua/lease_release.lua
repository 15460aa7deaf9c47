-- Releases a lease only if the caller still owns it.
-- KEYS: lease. ARGV: owner token. Returns 'released' or 'not_owner'.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 'released'
end
return 'not_owner'
