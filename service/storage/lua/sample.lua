-- Read random slots of a ring, uniformly: `batches` minibatches of `batch_size`.
-- The caller passes a fresh random seed; Lua's generator is seeded with it so
-- the choice of slots happens next to the data, in the same atomic step that
-- reads the buffer's size. Each slot is an O(1) GETRANGE.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, in order
-- ARGV: incarnation, batch_size, batches, with_replacement (1 or 0), seed, and
-- optionally each minibatch's own size, comma-separated, each at most batch_size (a
-- sharded buffer's share of each minibatch: storage/sharded.py)
-- Without replacement, slots are distinct within each minibatch.
-- Returns {'gone'}, {'stale'} (see meta.lua), {'too_few', size} if the ring cannot
-- give a minibatch, {'rate_limited', excess, size, total inserted, total sampled} if
-- the rate limit holds the sample back, else {'ok', size, total inserted, records
-- (a list of strings to join: see read_slots), slots}, and for a compressed buffer
-- the slots' frames and their sizes after those (see read_frames).
local refused, capacity, record_size, per_segment, total, sampled, min_size, per_insert,
  tolerance, framed = load_meta(ARGV[1], 'capacity', 'record_size', 'slots_per_segment',
    'total_inserted', 'total_sampled', 'min_size', 'samples_per_insert', 'tolerance', 'frames')
if refused then return refused end
total = tonumber(total)
local size = math.min(total, tonumber(capacity))
local batch_size, batches = tonumber(ARGV[2]), tonumber(ARGV[3])
local with_replacement = ARGV[4] == '1'
if size == 0 or (not with_replacement and batch_size > size) then return {'too_few', size} end
local sizes, wanted = {}, 0
for b = 1, batches do sizes[b] = batch_size end
if ARGV[6] and ARGV[6] ~= '' then
  local b = 0
  for part in string.gmatch(ARGV[6], '%d+') do
    b = b + 1
    sizes[b] = math.min(tonumber(part), batch_size)
  end
end
for b = 1, batches do wanted = wanted + sizes[b] end
local held = held_back(size, total, tonumber(sampled), wanted, min_size, per_insert, tolerance)
if held then return held end

math.randomseed(tonumber(ARGV[5]))
local slots = {}
local count = 0
for b = 1, batches do
  if with_replacement then
    for _ = 1, sizes[b] do
      count = count + 1
      slots[count] = math.random(0, size - 1)
    end
  else
    -- partial Fisher-Yates over 0..size-1, keeping only the swapped entries
    local swapped = {}
    for i = 0, sizes[b] - 1 do
      local j = math.random(i, size - 1)
      count = count + 1
      slots[count] = swapped[j] or j
      swapped[j] = swapped[i] or i
    end
  end
end

local records = read_slots(slots, tonumber(per_segment), tonumber(record_size))
redis.call('HINCRBY', KEYS[1], 'total_sampled', count)
if framed == '1' then
  local frames, sizes = read_frames(slots, tonumber(capacity), tonumber(per_segment), 0)
  return {'ok', size, total, records, slots, frames, sizes}
end
return {'ok', size, total, records, slots}
