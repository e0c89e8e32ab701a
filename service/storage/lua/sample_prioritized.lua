-- Draw slots of a prioritized ring in proportion to their priorities (already raised
-- to alpha in the sum tree): each minibatch of `batch_size` splits the total priority
-- into equal strata and draws one slot from each (Schaul et al.'s stratified
-- sampling), each an O(log N) descent of the tree.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, then the tree's levels
-- ARGV: incarnation, batch_size, batches, seed
-- Returns like sample.lua, with two more items on success: the drawn slots'
-- priorities (float64 each) and the tree's total, as a string.
local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'capacity', 'record_size',
  'slots_per_segment', 'total_inserted', 'total_sampled', 'min_size', 'samples_per_insert',
  'tolerance', 'levels')
if not meta[1] then return {1} end
if meta[1] ~= ARGV[1] then return {2} end
local capacity = tonumber(meta[2])
local record_size = tonumber(meta[3])
local per_segment = tonumber(meta[4])
local total = tonumber(meta[5])
local size = math.min(total, capacity)
local batch_size = tonumber(ARGV[2])
local batches = tonumber(ARGV[3])
local segments = math.ceil(capacity / per_segment)
local levels = {}
for level = 1, tonumber(meta[10]) do levels[level] = KEYS[1 + segments + level] end
local mass = tree_total(levels)
if size == 0 or mass <= 0 then return {3, size} end
local excess = over_rate(size, total, tonumber(meta[6]), batch_size * batches, meta[7], meta[8],
  meta[9])
if excess > 0 then return {7, excess, size, total, tonumber(meta[6])} end

math.randomseed(tonumber(ARGV[4]))
local stratum = mass / batch_size
local slots, priorities, records = {}, {}, {}
local count = 0
for _ = 1, batches do
  for i = 0, batch_size - 1 do
    count = count + 1
    local slot, priority = tree_find(levels, (i + math.random()) * stratum)
    slots[count] = slot
    priorities[count] = struct.pack('<d', priority)
    local segment = math.floor(slot / per_segment)
    local offset = (slot - segment * per_segment) * record_size
    records[count] = redis.call('GETRANGE', KEYS[2 + segment], offset, offset + record_size - 1)
  end
end
redis.call('HINCRBY', KEYS[1], 'total_sampled', count)
return {0, size, total, records, slots, table.concat(priorities),
  string.format('%.17g', mass)}
