-- A batch push, whole, in one round trip: every key is in the user's partition's slot.
-- Refuses a revoked token; marks each item whose client message_id was accepted in the last
-- 24 h (or earlier in this batch) a duplicate; refuses the whole batch if the user's rate
-- cannot cover its fresh messages; else gives them consecutive counts (INCRBY once), queues
-- them on the partition's validator inbox and remembers their client message_ids.
-- KEYS: 1 counter, 2 rate bucket, 3 inbox list, 4 inbox armed flag, 5 inbox counts, then the
-- token's three revocation keys when ARGV[5] is '1', then a "seen" key for each item whose
-- client gave a message_id.
-- ARGV: 1 rate, 2 burst, 3 armed TTL, 4 seen TTL, 5 '1' if the caller is a token, then per
-- item: '1' if it has a seen key (else '0'), and its message JSON without request_count.
-- Returns {'revoked'}, {'throttled', seconds} or {'queued', 'armed' or 'already_armed', {per
-- item its count, or 0 for a duplicate}}.
-- include: clock
-- include: take_tokens
-- include: counted
-- include: inbox_append
local token = ARGV[5] == '1'
if token and redis.call('EXISTS', KEYS[6], KEYS[7], KEYS[8]) > 0 then return {'revoked'} end
local next_key = token and 9 or 6
local seen, duplicate, here, fresh = {}, {}, {}, 0
for i = 6, #ARGV, 2 do
  local key = nil
  if ARGV[i] == '1' then key = KEYS[next_key]; next_key = next_key + 1 end
  if key and (here[key] or redis.call('EXISTS', key) == 1) then
    duplicate[i] = true
  else
    fresh = fresh + 1
    if key then here[key] = true; seen[i] = key end
  end
end
if fresh > 0 then
  local wait = take_tokens(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), fresh)
  if wait > 0 then return {'throttled', wait} end
end
local count = redis.call('INCRBY', KEYS[1], fresh) - fresh
local counts, items = {}, {}
for i = 6, #ARGV, 2 do
  if duplicate[i] then
    counts[#counts + 1] = 0
  else
    count = count + 1
    counts[#counts + 1] = count
    items[#items + 1] = counted(ARGV[i + 1], count)
    if seen[i] then redis.call('SET', seen[i], '1', 'EX', tonumber(ARGV[4])) end
  end
end
local armed = false
if #items > 0 then
  armed = inbox_append(KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[3]), 'pushes', items)
end
return {'queued', armed and 'armed' or 'already_armed', counts}
