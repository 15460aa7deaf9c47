-- Takes a drain's next batch, under its lease: due deferred items first, then the list's head,
-- cut at a byte budget (at least one item), and counts each item's takes by its SHA-1 (an
-- item whose drains keep dying is set aside). One round trip, with Redis's clock.
-- KEYS: list, later, takes. ARGV: batch size, byte budget.
-- Returns {now, due items taken, head items taken, their take counts in that order}.
-- include: clock
local size, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, size)
local head = {}
if #due < size then head = redis.call('LRANGE', KEYS[1], 0, size - #due - 1) end
local taken, takes, bytes = {{}, {}}, {}, 0
local function take(text, into)
  bytes = bytes + #text
  if #takes > 0 and bytes > budget then return false end
  into[#into + 1] = text
  takes[#takes + 1] = redis.call('HINCRBY', KEYS[3], redis.sha1hex(text), 1)
  return true
end
local whole = true
for _, text in ipairs(due) do
  if not take(text, taken[1]) then whole = false; break end
end
if whole then
  for _, text in ipairs(head) do
    if not take(text, taken[2]) then break end
  end
end
return {string.format('%.6f', now), taken[1], taken[2], takes}
