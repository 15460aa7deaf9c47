-- Appends items to a partition's inbox, counts them, and arms its drain. Included by every
-- script that queues (the inbox's own append, the push, the batch push), so that each stays
-- one script in the partition's slot.
-- list, armed, counts: the partition inbox's keys. armed_ttl: seconds. field: a field of the
-- counts hash that adds the items ("" for none). items: a Lua table of strings.
-- Returns true if this call armed the drain (the caller then wakes it).
local function inbox_append(list, armed, counts, armed_ttl, field, items)
  -- In slices: Lua's unpack has a stack limit.
  for i = 1, #items, 500 do
    redis.call('RPUSH', list, unpack(items, i, math.min(i + 499, #items)))
  end
  if field ~= '' then redis.call('HINCRBY', counts, field, #items) end
  return redis.call('SET', armed, '1', 'NX', 'EX', armed_ttl) ~= false
end
