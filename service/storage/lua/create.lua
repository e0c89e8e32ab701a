-- Create a buffer's metadata hash unless it exists.
-- KEYS[1]: meta hash
-- ARGV: incarnation, capacity, schema ('' until the first store), record_size,
--       slots_per_segment, created_at
-- Returns 1 when created, 0 when the buffer already existed (left untouched).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1],
  'incarnation', ARGV[1], 'capacity', ARGV[2], 'schema', ARGV[3],
  'record_size', ARGV[4], 'slots_per_segment', ARGV[5], 'created_at', ARGV[6],
  'total_inserted', 0, 'total_sampled', 0)
return 1
