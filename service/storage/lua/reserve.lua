-- Memory reservations, prepended to the scripts that create a ring or fix its size.
-- A reservation is recorded in the same script as the change it pays for, so
-- racing creates, deletes and first stores can never leave it out of step.

-- Records `needed` bytes for buffer `name` in the reservations hash `key`, unless all
-- reservations together would pass `budget` bytes (-1: no limit). Returns whether
-- it did, and the bytes the other buffers hold.
local function reserve(key, name, needed, budget)
  local others = 0
  local entries = redis.call('HGETALL', key)
  for i = 1, #entries, 2 do
    if entries[i] ~= name then others = others + tonumber(entries[i + 1]) end
  end
  budget = tonumber(budget)
  if budget >= 0 and others + tonumber(needed) > budget then return false, others end
  redis.call('HSET', key, name, needed)
  return true, others
end
