-- Create a buffer unless it exists: its meta hash, its place in the registry and its
-- memory reservation, in one step.
-- KEYS[1]: meta hash; KEYS[2]: the registry set; KEYS[3]: the reservations hash
-- ARGV: name, bytes to reserve, budget in bytes (-1: no limit), most buffers, then
--       field, value, field, value, ... of the meta hash
-- Returns {'exists'} when the buffer exists (left untouched), {'too_many'} when the
-- registry is full, {'refused', bytes the others hold} when the ring would not fit,
-- else {'created'}.
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {'too_many'} end
local granted, others = reserve(KEYS[3], ARGV[1], ARGV[2], ARGV[3])
if not granted then return {'refused', others} end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('SADD', KEYS[2], ARGV[1])
return {'created'}
