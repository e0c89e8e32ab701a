-- Loading a buffer's meta hash (KEYS[1]), prepended to the scripts that take one.
-- The caller passes the incarnation its cached metadata holds: a buffer deleted and
-- re-created since, by any replica, has another one, and the caller must learn of it
-- before it writes records of the wrong size or reads another buffer's.

-- nil, then the named fields' values in order (false where unset); or the reply to
-- give instead: {'gone'} when there is no such buffer, {'stale'} when it is another
-- incarnation than the caller's. Values come back as plain returns, not a table:
-- this runs on every store and sample.
local function load_meta(incarnation, ...)
  local values = redis.call('HMGET', KEYS[1], 'incarnation', ...)
  if not values[1] then return {'gone'} end
  if values[1] ~= incarnation then return {'stale'} end
  return nil, unpack(values, 2)
end
