-- Read transitions in insertion order: `count` of them, starting at the `first`-th
-- transition ever inserted (0-based). Consecutive slots come in one GETRANGE per run.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, in order
-- ARGV: incarnation, first, count
-- Returns {1} if the buffer is gone, {2} if it was re-created since the caller
-- read it, {6, oldest held, total inserted} if the range is not (or no longer) held,
-- else {0, size, total inserted, records (a list of runs, joined by the caller)}.
local meta = redis.call('HMGET', KEYS[1], 'incarnation', 'capacity', 'record_size',
  'slots_per_segment', 'total_inserted')
if not meta[1] then return {1} end
if meta[1] ~= ARGV[1] then return {2} end
local capacity = tonumber(meta[2])
local record_size = tonumber(meta[3])
local per_segment = tonumber(meta[4])
local total = tonumber(meta[5])
local size = math.min(total, capacity)
local first = tonumber(ARGV[2])
local last = first + tonumber(ARGV[3])
if first < total - size or last > total then return {6, total - size, total} end

local records = {}
local k = first
while k < last do
  local slot = k % capacity
  local segment = math.floor(slot / per_segment)
  local within = slot - segment * per_segment
  local run = math.min(last - k, capacity - slot, per_segment - within)
  records[#records + 1] = redis.call('GETRANGE', KEYS[2 + segment], within * record_size,
    (within + run) * record_size - 1)
  k = k + run
end
return {0, size, total, records}
