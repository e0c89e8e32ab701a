-- Give a buffer created without a schema the one its first store implies, and
-- reserve the memory its ring now needs. Only the first caller wins; later callers
-- get the stored schema back and reserve nothing.
-- KEYS[1]: meta hash; KEYS[2]: the reservations hash
-- ARGV: incarnation, schema, record_size, slots_per_segment, name, bytes to reserve,
--       budget in bytes (-1: no limit), frames (1 when fields are compressed, else 0)
-- Returns {'gone'}, {'stale'} (see meta.lua), {'refused', bytes the others hold} if
-- the ring would not fit, else {'ok', schema now in force}.
local refused, schema = load_meta(ARGV[1], 'schema')
if refused then return refused end
if schema ~= '' then return {'ok', schema} end
local granted, others = reserve(KEYS[2], ARGV[5], ARGV[6], ARGV[7])
if not granted then return {'refused', others} end
redis.call('HSET', KEYS[1], 'schema', ARGV[2], 'record_size', ARGV[3],
  'slots_per_segment', ARGV[4], 'frames', ARGV[8])
return {'ok', ARGV[2]}
