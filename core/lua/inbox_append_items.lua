-- Appends JSON items to a partition's inbox.
-- KEYS: list, armed flag, counts. ARGV: armed TTL, count field ("" for none), then the items.
-- Returns 'armed' if this call armed the drain (the caller wakes it), else 'already_armed'.
-- include: inbox_append
local items = {}
for i = 3, #ARGV do items[#items + 1] = ARGV[i] end
if inbox_append(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), ARGV[2], items) then
  return 'armed'
end
return 'already_armed'
