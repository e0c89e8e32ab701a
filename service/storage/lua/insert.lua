-- Append packed records to a ring of `capacity` fixed-width slots, in one step.
-- Reserving the slots (HINCRBY) and writing them happen in the same script, so
-- concurrent writers never share a slot and no reader sees half a record.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, in order
-- ARGV: incarnation, count, records (count * record_size bytes)
-- Returns {1} if the buffer is gone, {2} if it was re-created since the caller
-- read it, else {0, first slot written, total inserted after this batch}.
local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'capacity', 'record_size',
  'slots_per_segment', 'total_inserted')
if not meta[1] then return {1} end
if meta[1] ~= ARGV[1] then return {2} end
local capacity = tonumber(meta[2])
local record_size = tonumber(meta[3])
local per_segment = tonumber(meta[4])
local before = tonumber(meta[5])
local count = tonumber(ARGV[2])
local records = ARGV[3]
local total = redis.call('HINCRBY', KEYS[1], 'total_inserted', count)

-- A batch longer than the ring only leaves its newest `capacity` records.
local j = 0
if count > capacity then j = count - capacity end
while j < count do
  local slot = (before + j) % capacity
  local segment = math.floor(slot / per_segment)
  local within = slot - segment * per_segment
  -- a run of consecutive slots ends at the batch, the ring or the segment end
  local run = math.min(count - j, capacity - slot, per_segment - within)
  redis.call('SETRANGE', KEYS[2 + segment], within * record_size,
    string.sub(records, j * record_size + 1, (j + run) * record_size))
  j = j + run
end
return {0, before % capacity, total}
