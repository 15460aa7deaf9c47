-- Appends items to a partition's inbox, counts them, and arms its drain. Included by every
-- script that queues (the inbox's own append, the push, the batch push), so that each stays
-- one script in the partition's slot.
-- list, armed, counts: the partition inbox's keys. armed_ttl: seconds. field: a field of the
-- counts hash that adds the items ("" for none). items: a Lua table of strings.
-- Returns true if this call armed the drain (the caller then wakes it).
-- include: in_slices
local function inbox_append(list, armed, counts, armed_ttl, field, items)
  in_slices('RPUSH', list, items, 1, #items)
  if field ~= '' then redis.call('HINCRBY', counts, field, #items) end
  return redis.call('SET', armed, '1', 'NX', 'EX', armed_ttl) ~= false
end
