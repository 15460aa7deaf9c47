-- Refresh token rotation with reuse detection (RFC 9700, 4.14.2), atomically. SET NX makes
-- each refresh token single-use even when requests race with it; a token that was already
-- used (or logged out) means someone else holds a copy, so its family goes.
-- KEYS[1]: the refresh token's revocation key; KEYS[2]: its family's revocation key.
-- ARGV[1]: seconds until the token expires; ARGV[2]: the family key's TTL in seconds.
-- Returns 'rotated' (the token is now used up), 'reused' (it was used before: the family is
-- revoked now) or 'family_revoked' (the family was revoked already).
if redis.call('EXISTS', KEYS[2]) == 1 then return 'family_revoked' end
if redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then return 'rotated' end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
return 'reused'
