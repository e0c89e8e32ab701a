-- Delete a buffer: every key its metadata names, its registry entry and its memory
-- reservation, in one step; refused if the layout changed since the caller read it.
-- KEYS[1]: meta hash; KEYS[2]: the registry set; KEYS[3]: the reservations hash;
-- KEYS[4..]: every other key of the buffer, as the caller's reading of the meta hash
-- names them (segments, sum tree levels, weights, episodes)
-- ARGV: name, incarnation and slots_per_segment as the caller read them
-- Returns {'gone'}, {'stale'} (see meta.lua) when the buffer was re-created or a first
-- store changed its layout since (the caller reads it again), else {'ok'}.
local refused, per_segment = load_meta(ARGV[2], 'slots_per_segment')
if refused then return refused end
if per_segment ~= ARGV[3] then return {'stale'} end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local others = {KEYS[1]}
for i = 4, #KEYS do others[#others + 1] = KEYS[i] end
redis.call('UNLINK', unpack(others))
return {'ok'}
