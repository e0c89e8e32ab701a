-- Create a buffer's metadata hash unless it exists.
-- KEYS[1]: meta hash
-- ARGV: field, value, field, value, ... (incarnation, capacity, schema, ...)
-- Returns 1 when created, 0 when the buffer already existed (left untouched).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
