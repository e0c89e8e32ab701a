-- Read random slots of a ring, uniformly: `batches` minibatches of `batch_size`.
-- The caller passes a fresh random seed; Lua's generator is seeded with it so
-- the choice of slots happens next to the data, in the same atomic step that
-- reads the buffer's size. Each slot is an O(1) GETRANGE.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, in order
-- ARGV: incarnation, batch_size, batches, with_replacement (1 or 0), seed
-- Without replacement, slots are distinct within each minibatch.
-- Returns {1} if the buffer is gone, {2} if it was re-created since the caller
-- read it, {3, size} if the ring cannot give a minibatch, {7, excess, size, total
-- inserted, total sampled} if the rate limit holds the sample back, else
-- {0, size, total inserted, records (one string each), slots}. The records go back as
-- a list: joining megabytes of frames in Lua costs Redis far more than in the service.
local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'capacity', 'record_size',
  'slots_per_segment', 'total_inserted', 'total_sampled', 'min_size', 'samples_per_insert',
  'tolerance')
if not meta[1] then return {1} end
if meta[1] ~= ARGV[1] then return {2} end
local capacity = tonumber(meta[2])
local record_size = tonumber(meta[3])
local per_segment = tonumber(meta[4])
local total = tonumber(meta[5])
local size = math.min(total, capacity)
local batch_size = tonumber(ARGV[2])
local batches = tonumber(ARGV[3])
local with_replacement = ARGV[4] == '1'
if size == 0 or (not with_replacement and batch_size > size) then return {3, size} end
local excess = over_rate(size, total, tonumber(meta[6]), batch_size * batches, meta[7], meta[8],
  meta[9])
if excess > 0 then return {7, excess, size, total, tonumber(meta[6])} end

math.randomseed(tonumber(ARGV[5]))
local slots = {}
local count = 0
for _ = 1, batches do
  if with_replacement then
    for _ = 1, batch_size do
      count = count + 1
      slots[count] = math.random(0, size - 1)
    end
  else
    -- partial Fisher-Yates over 0..size-1, keeping only the swapped entries
    local swapped = {}
    for i = 0, batch_size - 1 do
      local j = math.random(i, size - 1)
      count = count + 1
      slots[count] = swapped[j] or j
      swapped[j] = swapped[i] or i
    end
  end
end

local records = {}
for i = 1, count do
  local slot = slots[i]
  local segment = math.floor(slot / per_segment)
  local offset = (slot - segment * per_segment) * record_size
  records[i] = redis.call('GETRANGE', KEYS[2 + segment], offset, offset + record_size - 1)
end
redis.call('HINCRBY', KEYS[1], 'total_sampled', count)
return {0, size, total, records, slots}
