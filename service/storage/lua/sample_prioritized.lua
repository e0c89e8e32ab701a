-- Draw slots of a prioritized ring in proportion to their priorities (already raised
-- to alpha in the sum tree): each minibatch of `batch_size` splits the total priority
-- into equal strata and draws one slot from each (Schaul et al.'s stratified
-- sampling), each an O(log N) descent of the tree.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, then the tree's levels
-- ARGV: incarnation, batch_size, batches, seed
-- Returns like sample.lua, with two more items on 'ok' before any frames: the drawn
-- slots' priorities (float64 each) and the tree's total, as a string.
local refused, capacity, record_size, per_segment, total, sampled, min_size, per_insert,
  tolerance, levels, framed = load_meta(ARGV[1], 'capacity', 'record_size',
    'slots_per_segment', 'total_inserted', 'total_sampled', 'min_size', 'samples_per_insert',
    'tolerance', 'levels', 'frames')
if refused then return refused end
capacity, per_segment, total = tonumber(capacity), tonumber(per_segment), tonumber(total)
local size = math.min(total, capacity)
local batch_size, batches = tonumber(ARGV[2]), tonumber(ARGV[3])
local level_count = tonumber(levels)
levels = tree_levels(capacity, per_segment, level_count)
local mass = tree_total(levels)
if size == 0 or mass <= 0 then return {'too_few', size} end
local held = held_back(size, total, tonumber(sampled), batch_size * batches, min_size,
  per_insert, tolerance)
if held then return held end

math.randomseed(tonumber(ARGV[4]))
local stratum = mass / batch_size
local slots, priorities = {}, {}
local count = 0
for _ = 1, batches do
  for i = 0, batch_size - 1 do
    count = count + 1
    local slot, priority = tree_find(levels, (i + math.random()) * stratum)
    slots[count] = slot
    priorities[count] = struct.pack('<d', priority)
  end
end
local records = read_slots(slots, per_segment, tonumber(record_size))
redis.call('HINCRBY', KEYS[1], 'total_sampled', count)
local reply = {'ok', size, total, records, slots, table.concat(priorities),
  string.format('%.17g', mass)}
if framed == '1' then
  reply[8], reply[9] = read_frames(slots, capacity, per_segment, level_count)
end
return reply
