-- Append packed records to a ring of `capacity` fixed-width slots, in one step.
-- Reserving the slots (HINCRBY) and writing them happen in the same script, so
-- concurrent writers never share a slot and no reader sees half a record.
-- With an idempotency key, the answer is remembered in the same step: a retry of
-- a batch that was stored (its reply lost on the way) gets the first answer back
-- instead of storing the batch twice. A prioritized buffer gives each new slot
-- its priority (the writer's, else the highest seen) in its sum tree.
-- KEYS[1]: meta hash; KEYS[2]: idempotency record (any key when unused);
-- KEYS[3..]: the ring's segment strings, then the sum tree's levels, leaves first
-- ARGV: incarnation, count, records (count * record_size bytes),
--       use_key (1 or 0), body digest, key time-to-live in seconds,
--       priorities (count float64, or '' for the highest seen)
-- Returns {1} if the buffer is gone, {2} if it was re-created since the caller
-- read it, {4} if the key was used for another body, {5, first slot, total
-- inserted, count} for a repeated key (the first answer), else {0, first slot,
-- total inserted after this batch, count}.
local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'capacity', 'record_size',
  'slots_per_segment', 'total_inserted', 'alpha', 'levels', 'max_priority')
if not meta[1] then return {1} end
if meta[1] ~= ARGV[1] then return {2} end
local use_key = ARGV[4] == '1'
if use_key then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    local digest, first, total, count = string.match(seen, '^(%S+) (%d+) (%d+) (%d+)$')
    if digest ~= ARGV[5] then return {4} end
    return {5, tonumber(first), tonumber(total), tonumber(count)}
  end
end
local capacity = tonumber(meta[2])
local record_size = tonumber(meta[3])
local per_segment = tonumber(meta[4])
local before = tonumber(meta[5])
local count = tonumber(ARGV[2])
local records = ARGV[3]
local total = redis.call('HINCRBY', KEYS[1], 'total_inserted', count)

-- A batch longer than the ring only leaves its newest `capacity` records.
local skip = 0
if count > capacity then skip = count - capacity end
local j = skip
while j < count do
  local slot = (before + j) % capacity
  local segment = math.floor(slot / per_segment)
  local within = slot - segment * per_segment
  -- a run of consecutive slots ends at the batch, the ring or the segment end
  local run = math.min(count - j, capacity - slot, per_segment - within)
  redis.call('SETRANGE', KEYS[3 + segment], within * record_size,
    string.sub(records, j * record_size + 1, (j + run) * record_size))
  j = j + run
end

if meta[6] and meta[6] ~= '' then
  local alpha = tonumber(meta[6])
  local segments = math.ceil(capacity / per_segment)
  local levels = {}
  for level = 1, tonumber(meta[7]) do levels[level] = KEYS[2 + segments + level] end
  local highest = tonumber(meta[8])
  local given = ARGV[7]
  local changes = {}
  for i = skip, count - 1 do
    local priority = highest
    if given ~= '' then
      priority = struct.unpack('<d', given, i * 8 + 1)
      if priority > highest then highest = priority end
    end
    changes[(before + i) % capacity] = priority ^ alpha
  end
  tree_update(levels, changes)
  redis.call('HSET', KEYS[1], 'max_priority', string.format('%.17g', highest))
end

local first = before % capacity
if use_key then
  redis.call('SET', KEYS[2], string.format('%s %d %d %d', ARGV[5], first, total, count),
    'EX', ARGV[6])
end
return {0, first, total, count}
