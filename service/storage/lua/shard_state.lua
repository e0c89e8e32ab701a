-- One shard's counters and, in a prioritized buffer, its total priority: what a
-- sampler of a sharded buffer reads from every shard before it shares a minibatch
-- out among them (storage/sharded.py).
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, then the tree's levels
-- ARGV: incarnation
-- Returns {'gone'}, {'stale'} (see meta.lua), else {'ok', size, total inserted, total
-- sampled, total priority (a string; '0' in a uniform buffer)}.
local refused, capacity, per_segment, total, sampled, levels = load_meta(ARGV[1],
  'capacity', 'slots_per_segment', 'total_inserted', 'total_sampled', 'levels')
if refused then return refused end
capacity, total = tonumber(capacity), tonumber(total)
local mass = 0
if tonumber(levels) > 0 then
  mass = tree_total(tree_levels(capacity, tonumber(per_segment), tonumber(levels)))
end
return {'ok', math.min(total, capacity), total, tonumber(sampled), string.format('%.17g', mass)}
