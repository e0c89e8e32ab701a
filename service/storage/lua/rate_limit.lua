-- The rate limit check, prepended to the sampling scripts.
-- Returns how many transitions this sample would take beyond what the limit allows
-- (0 or less: allowed). min_size, per_insert ('' for none) and tolerance come from
-- the meta hash as strings.
local function over_rate(size, total_inserted, total_sampled, count, min_size, per_insert,
                         tolerance)
  min_size = tonumber(min_size) or 0
  if size < min_size then return count end
  if per_insert == nil or per_insert == '' then return 0 end
  local allowed = tonumber(per_insert) * (total_inserted - min_size) + tonumber(tolerance)
  return total_sampled + count - allowed
end
