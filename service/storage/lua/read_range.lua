-- Read transitions in insertion order: `count` of them, starting at the `first`-th
-- transition ever inserted (0-based). Consecutive slots come in one GETRANGE per run.
-- KEYS[1]: meta hash; KEYS[2..]: the ring's segment strings, in order
-- ARGV: incarnation, first, count
-- Returns {'gone'}, {'stale'} (see meta.lua), {'not_held', oldest held, total
-- inserted} if the range is not (or no longer) held, else {'ok', size, total
-- inserted, records (a list of runs, joined by the caller)}, and for a compressed
-- buffer the frames and their sizes after those (see read_frames).
local refused, capacity, record_size, per_segment, total, levels, framed = load_meta(ARGV[1],
  'capacity', 'record_size', 'slots_per_segment', 'total_inserted', 'levels', 'frames')
if refused then return refused end
capacity, record_size, total = tonumber(capacity), tonumber(record_size), tonumber(total)
local size = math.min(total, capacity)
local first = tonumber(ARGV[2])
local last = first + tonumber(ARGV[3])
if first < total - size or last > total then return {'not_held', total - size, total} end

local records = {}
if record_size > 0 then
  each_run(first, last, capacity, tonumber(per_segment), record_size,
    function(key, offset, _, run)
      records[#records + 1] = redis.call('GETRANGE', key, offset, offset + run * record_size - 1)
    end)
end
if framed == '1' then
  local slots = {}
  for k = first, last - 1 do slots[#slots + 1] = k % capacity end
  local frames, sizes = read_frames(slots, capacity, tonumber(per_segment), tonumber(levels))
  return {'ok', size, total, records, frames, sizes}
end
return {'ok', size, total, records}
