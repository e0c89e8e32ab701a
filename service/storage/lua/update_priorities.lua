-- Set new priorities for sampled slots (a learner's TD errors), skipping any slot
-- that has been overwritten since it was sampled: its new transition keeps its own.
-- Only the prioritized sampler calls it, on a prioritized buffer's incarnation.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, then the tree's levels
-- ARGV: incarnation, slots, insertion numbers (the n-th transition ever inserted, as
--       the sample said), priorities: each `count` float64 values
-- Returns {'gone'}, {'stale'} (see meta.lua), else {'ok', priorities set, slots
-- skipped as overwritten}.
local refused, capacity, per_segment, total, alpha, levels, highest = load_meta(ARGV[1],
  'capacity', 'slots_per_segment', 'total_inserted', 'alpha', 'levels', 'max_priority')
if refused then return refused end
capacity, total, alpha = tonumber(capacity), tonumber(total), tonumber(alpha)
highest = tonumber(highest)
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
tree_update(tree_levels(capacity, tonumber(per_segment), tonumber(levels)), changes)
redis.call('HSET', KEYS[1], 'max_priority', string.format('%.17g', highest))
return {'ok', set, skipped}
