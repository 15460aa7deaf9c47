-- Record when an API key was last used. Only an existing record gets it: a revoke or an
-- erasure can delete the key between the read and this write, and a plain HSET would bring
-- back a hash with nothing but last_used (no secret, no expiry) that would outlive the key.
-- KEYS[1]: the API key's record (hash with `secret_hash`).
-- ARGV[1]: the time of use, formatted.
-- Returns 'touched', or 'gone' when the record (or its secret's hash) no longer exists.
if redis.call('HEXISTS', KEYS[1], 'secret_hash') == 0 then return 'gone' end
redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
return 'touched'
