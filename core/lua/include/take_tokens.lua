-- The per-user token bucket, over messages (not requests), shared by every route in. Needs
-- `now` (include clock first). Returns 0 and takes `cost` tokens, or the whole seconds to wait
-- and takes nothing.
local function take_tokens(bucket, rate, burst, cost)
  -- One string "tokens at": a GET and a SET EX, cheaper than a hash and its EXPIRE.
  local tokens, at = burst, now
  local state = redis.call('GET', bucket)
  if state then
    local space = string.find(state, ' ', 1, true)
    tokens, at = tonumber(string.sub(state, 1, space - 1)), tonumber(string.sub(state, space + 1))
  end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < cost then return math.max(1, math.ceil((cost - tokens) / rate)) end
  redis.call('SET', bucket, string.format('%.3f %.6f', tokens - cost, now), 'EX',
    math.ceil(burst / rate) + 1)
  return 0
end
