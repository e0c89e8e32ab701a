-- Append episode results to a buffer's capped stream, if the buffer exists. The
-- check is in the same step, so a buffer another replica deleted (whatever this
-- one has cached) gets no orphan stream.
-- KEYS[1]: meta hash; KEYS[2]: the episode stream
-- ARGV: entries kept (approximately: trimming is by whole stream nodes), then
--       return, length and source of each episode, in order
-- Returns {'gone'} if the buffer is gone, else {'ok', id of the last episode}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local id
for i = 2, #ARGV, 3 do
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'return', ARGV[i],
    'length', ARGV[i + 1], 'source', ARGV[i + 2])
end
return {'ok', id}
