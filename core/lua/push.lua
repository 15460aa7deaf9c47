-- The push, whole, in one round trip: every key is in the user's partition's slot. Refuses a
-- revoked token; answers a stored Idempotency-Key (or refuses it reused with another body);
-- refuses a user over their rate; else counts the push (INCR), queues the message with its
-- count on the partition's validator inbox, and stores the Idempotency-Key's answer.
-- KEYS: 1 counter, 2 rate bucket, 3 inbox list, 4 inbox armed flag, 5 inbox counts, then the
-- token's three revocation keys (its own, its family's, its user's) when ARGV[6] is '1', then
-- the Idempotency-Key's record when ARGV[7] is not ''.
-- ARGV: 1 rate per second, 2 burst, 3 armed TTL, 4 idempotency TTL, 5 the message JSON
-- without its request_count, 6 '1' if the caller is a token, 7 the body's fingerprint ('' for
-- no key), 8 the response JSON without its request_count.
-- Returns {'revoked'}, {'reused'}, {'replayed', response}, {'throttled', seconds} or
-- {'queued', count, 'armed' or 'already_armed'}.
-- include: clock
-- include: take_tokens
-- include: counted
-- include: inbox_append
local token = ARGV[6] == '1'
if token and redis.call('EXISTS', KEYS[6], KEYS[7], KEYS[8]) > 0 then return {'revoked'} end
local fingerprint = ARGV[7]
local record = fingerprint ~= '' and KEYS[token and 9 or 6] or nil
if record then
  local previous = redis.call('GET', record)
  if previous then
    if string.sub(previous, 1, #fingerprint + 1) ~= fingerprint .. '\n' then return {'reused'} end
    return {'replayed', string.sub(previous, #fingerprint + 2)}
  end
end
local wait = take_tokens(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
if wait > 0 then return {'throttled', wait} end
local count = redis.call('INCR', KEYS[1])
local armed = inbox_append(KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[3]), 'pushes',
  {counted(ARGV[5], count)})
if record then
  redis.call('SET', record, fingerprint .. '\n' .. counted(ARGV[8], count), 'EX', tonumber(ARGV[4]))
end
return {'queued', count, armed and 'armed' or 'already_armed'}
