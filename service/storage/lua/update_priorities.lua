-- Set new priorities for sampled slots (a learner's TD errors), skipping any slot
-- that has been overwritten since it was sampled: its new transition keeps its own.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, then the tree's levels
-- ARGV: incarnation, slots, insertion numbers (the n-th transition ever inserted, as
--       the sample said), priorities: each `count` float64 values
-- Returns {1} if the buffer is gone, {2} if re-created, {8} if not prioritized,
-- else {0, priorities set, slots skipped as overwritten}.
local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'capacity', 'slots_per_segment',
  'total_inserted', 'alpha', 'levels', 'max_priority')
if not meta[1] then return {1} end
if meta[1] ~= ARGV[1] then return {2} end
if not meta[5] or meta[5] == '' then return {8} end
local capacity = tonumber(meta[2])
local segments = math.ceil(capacity / tonumber(meta[3]))
local total = tonumber(meta[4])
local alpha = tonumber(meta[5])
local levels = {}
for level = 1, tonumber(meta[6]) do levels[level] = KEYS[1 + segments + level] end
local highest = tonumber(meta[7])
local changes, set, skipped = {}, 0, 0
for i = 0, #ARGV[2] / 8 - 1 do
  local slot = struct.unpack('<d', ARGV[2], i * 8 + 1)
  local inserted = struct.unpack('<d', ARGV[3], i * 8 + 1)
  local priority = struct.unpack('<d', ARGV[4], i * 8 + 1)
  -- the slot now holds the newest insertion number congruent to it
  local held = slot + capacity * math.floor((total - 1 - slot) / capacity)
  if slot < capacity and inserted == held and inserted < total then
    changes[slot] = priority ^ alpha
    if priority > highest then highest = priority end
    set = set + 1
  else
    skipped = skipped + 1
  end
end
tree_update(levels, changes)
redis.call('HSET', KEYS[1], 'max_priority', string.format('%.17g', highest))
return {0, set, skipped}
