-- Calls `command` on `key` with items[first..last], 500 at a time: Lua's unpack has a stack
-- limit. Included by the scripts that add or remove a batch's items in one command.
local function in_slices(command, key, items, first, last)
  for i = first, last, 500 do
    redis.call(command, key, unpack(items, i, math.min(i + 499, last)))
  end
end
