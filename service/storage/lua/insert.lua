-- Append packed records to a ring of `capacity` fixed-width slots, in one step.
-- Reserving the slots (HINCRBY) and writing them happen in the same script, so
-- concurrent writers never share a slot and no reader sees half a record.
-- With an idempotency key, the answer is remembered in the same step: a retry of
-- a batch that was stored (its reply lost on the way) gets the first answer back
-- instead of storing the batch twice. A prioritized buffer gives each new slot
-- its priority (the writer's, else the highest seen) in its sum tree. A compressed
-- buffer keeps each new slot's frame in its segment's frames hash.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, then the sum tree's
-- levels, leaves first, then the frames hashes; KEYS[#KEYS]: the idempotency record
-- (any key when unused)
-- ARGV: incarnation, count, records (count * record_size bytes),
--       use_key (1 or 0), body digest, key time-to-live in seconds,
--       priorities (count float64, or '' for the highest seen),
--       frames (back to back) and their sizes (count uint32), '' and '' when uncompressed
-- Returns {'gone'}, {'stale'} (see meta.lua), {'key_reused'} if the key was used for
-- another body, {'repeated', first slot, total inserted, count} for a repeated key
-- (the first answer), else {'ok', first slot, total inserted after this batch, count}.
local refused, capacity, record_size, per_segment, before, alpha, levels, highest, framed =
  load_meta(ARGV[1], 'capacity', 'record_size', 'slots_per_segment', 'total_inserted',
    'alpha', 'levels', 'max_priority', 'frames')
if refused then return refused end
local record_key = KEYS[#KEYS]
local use_key = ARGV[4] == '1'
if use_key then
  local seen = redis.call('GET', record_key)
  if seen then
    local digest, first, total, count = string.match(seen, '^(%S+) (%d+) (%d+) (%d+)$')
    if digest ~= ARGV[5] then return {'key_reused'} end
    return {'repeated', tonumber(first), tonumber(total), tonumber(count)}
  end
end
capacity, record_size = tonumber(capacity), tonumber(record_size)
per_segment, before = tonumber(per_segment), tonumber(before)
local count = tonumber(ARGV[2])
local records = ARGV[3]
local total = redis.call('HINCRBY', KEYS[1], 'total_inserted', count)

-- A batch longer than the ring only leaves its newest `capacity` records.
local skip = 0
if count > capacity then skip = count - capacity end
each_run(before + skip, before + count, capacity, per_segment, record_size,
  function(key, offset, k, run)
    local j = k - before
    redis.call('SETRANGE', key, offset,
      string.sub(records, j * record_size + 1, (j + run) * record_size))
  end)

if framed == '1' then
  local frames, sizes, levels_before = ARGV[8], ARGV[9], tonumber(levels)
  local start = 1
  for i = 0, count - 1 do
    local size = struct.unpack('<I4', sizes, i * 4 + 1)
    if i >= skip then
      local slot = (before + i) % capacity
      redis.call('HSET', frames_key(slot, capacity, per_segment, levels_before), slot,
        string.sub(frames, start, start + size - 1))
    end
    start = start + size
  end
end

if alpha and alpha ~= '' then
  alpha, highest = tonumber(alpha), tonumber(highest)
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
  tree_update(tree_levels(capacity, per_segment, tonumber(levels)), changes)
  redis.call('HSET', KEYS[1], 'max_priority', string.format('%.17g', highest))
end

local first = before % capacity
if use_key then
  redis.call('SET', record_key, string.format('%s %d %d %d', ARGV[5], first, total, count),
    'EX', ARGV[6])
end
return {'ok', first, total, count}
