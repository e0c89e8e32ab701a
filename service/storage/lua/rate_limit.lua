-- The rate limit check, prepended to the sampling scripts.

-- The reply holding back a sample of `count` transitions from a ring holding `size`,
-- or nil when the buffer's rate limit allows it: {'rate_limited', excess, size, total
-- inserted, total sampled}, the excess being how many transitions the sample would
-- take beyond what the limit allows. min_size, per_insert ('' for none) and
-- tolerance come from the meta hash as strings.
local function held_back(size, total, sampled, count, min_size, per_insert, tolerance)
  min_size = tonumber(min_size) or 0
  local excess = count
  if size >= min_size then
    if not per_insert or per_insert == '' then return nil end
    excess = sampled + count - (tonumber(per_insert) * (total - min_size) + tonumber(tolerance))
  end
  if excess > 0 then return {'rate_limited', excess, size, total, sampled} end
  return nil
end
