-- Give a buffer created without a schema the one its first store implies.
-- Only the first caller wins; later callers get the stored schema back.
-- KEYS[1]: meta hash
-- ARGV: incarnation, schema, record_size, slots_per_segment
-- Returns {1} if the buffer is gone, {2} if it was re-created since the caller
-- read it, else {0, schema now in force}.
local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'schema')
if not meta[1] then return {1} end
if meta[1] ~= ARGV[1] then return {2} end
if meta[2] ~= '' then return {0, meta[2]} end
redis.call('HSET', KEYS[1], 'schema', ARGV[2], 'record_size', ARGV[3],
  'slots_per_segment', ARGV[4])
return {0, ARGV[2]}
