-- Where a slot's record lives, prepended to the scripts that read or write records.
-- A ring of `capacity` slots of `record_size` bytes is cut into strings of
-- `per_segment` slots (Redis strings stop at 512 MB): KEYS[2] onwards, in order,
-- then a prioritized buffer's sum tree levels, leaves first, then a compressed
-- buffer's frames: one hash per segment, slot -> zstd frame (frames vary in size, so
-- they cannot share a fixed-width string; a hash still reads any slot in O(1)).

-- Calls visit(key, byte offset, k, run) for each run of consecutive slots holding
-- the k-th to the (last - 1)-th transition ever inserted: a run ends at the ring's
-- or a segment's end, so each is one GETRANGE or SETRANGE.
local function each_run(first, last, capacity, per_segment, record_size, visit)
  local k = first
  while k < last do
    local slot = k % capacity
    local segment = math.floor(slot / per_segment)
    local within = slot - segment * per_segment
    local run = math.min(last - k, capacity - slot, per_segment - within)
    visit(KEYS[2 + segment], within * record_size, k, run)
    k = k + run
  end
end

-- Up to this many bytes of records go back as one string: one bulk reply costs Redis
-- (and the service's parser) far less than hundreds of small ones, while joining
-- megabytes of frames costs Redis more than the service.
local JOINED_BELOW = 65536

-- The records of `slots`, in order, one GETRANGE each: a list of one string each, or
-- of one string for all when they are small; the caller joins the list.
local function read_slots(slots, per_segment, record_size)
  if record_size == 0 then return {} end  -- every field is compressed: frames only
  local records = {}
  for i = 1, #slots do
    local segment = math.floor(slots[i] / per_segment)
    local offset = (slots[i] - segment * per_segment) * record_size
    records[i] = redis.call('GETRANGE', KEYS[2 + segment], offset, offset + record_size - 1)
  end
  if #slots * record_size <= JOINED_BELOW then return {table.concat(records)} end
  return records
end

-- The keys of the sum tree's `count` levels, leaves first: they follow the segments.
local function tree_levels(capacity, per_segment, count)
  local before = 1 + math.ceil(capacity / per_segment)
  local levels = {}
  for level = 1, count do levels[level] = KEYS[before + level] end
  return levels
end

-- The hash holding `slot`'s frame in a compressed buffer (see the top of this file).
local function frames_key(slot, capacity, per_segment, levels)
  local segments = math.ceil(capacity / per_segment)
  return KEYS[2 + segments + levels + math.floor(slot / per_segment)]
end

-- The frames of `slots`, in order: one string of them all, and one of their sizes
-- (uint32 each), so a minibatch's frames travel as two bulk replies.
local function read_frames(slots, capacity, per_segment, levels)
  local frames, sizes = {}, {}
  for i = 1, #slots do
    local frame = redis.call('HGET', frames_key(slots[i], capacity, per_segment, levels),
      slots[i])
    frames[i] = frame
    sizes[i] = struct.pack('<I4', #frame)
  end
  return table.concat(frames), table.concat(sizes)
end
