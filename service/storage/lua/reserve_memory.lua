-- Reserve memory for a buffer's ring, if the total of all reservations stays in budget.
-- KEYS[1]: the reservations hash (buffer name -> bytes)
-- ARGV: buffer name, bytes needed, budget in bytes (-1: no limit, only record it)
-- Returns {1, reserved by the others} when granted, {0, reserved by the others} if not.
local others = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  if entries[i] ~= ARGV[1] then others = others + tonumber(entries[i + 1]) end
end
local budget = tonumber(ARGV[3])
if budget >= 0 and others + tonumber(ARGV[2]) > budget then return {0, others} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {1, others}
