-- Replace a user's password hash, compare-and-set: a record deleted, or given another
-- password, meanwhile is left alone (an HSET on a deleted user's key would bring back a
-- record with nothing but a hash).
-- KEYS[1]: the user's record (hash with `password`).
-- ARGV[1]: the stale hash expected there; ARGV[2]: the fresh hash.
-- Returns 'rehashed', or 'changed' when the record no longer holds the stale hash.
if redis.call('HGET', KEYS[1], 'password') ~= ARGV[1] then return 'changed' end
redis.call('HSET', KEYS[1], 'password', ARGV[2])
return 'rehashed'
