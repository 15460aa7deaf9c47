-- Appends entries to one live-tail stream, capped approximately.
-- KEYS: the stream. ARGV: its approximate cap, then the entries' JSON.
-- Returns the number of entries appended.
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'data', ARGV[i])
end
return #ARGV - 1
