-- A 16-ary sum tree of float64 priorities, one Redis string per level, prepended to
-- the scripts that use it. Level 1 holds one leaf per slot; each node of level k+1
-- holds the sum of its 16 children on level k; the last level's single node is the
-- total. A change to a leaf adds its delta to every ancestor: O(log16 N) calls, and
-- changes under one parent are merged, so a batch of contiguous slots costs little
-- more than its leaves.
local FANOUT = 16

local function tree_get(key, index)
  local bytes = redis.call('GETRANGE', key, index * 8, index * 8 + 7)
  if #bytes < 8 then return 0 end
  return (struct.unpack('<d', bytes))
end

local function tree_set(key, index, value)
  redis.call('SETRANGE', key, index * 8, struct.pack('<d', value))
end

-- levels: the level keys, leaves first; changes: leaf index -> new value
local function tree_update(levels, changes)
  local deltas = {}
  for leaf, value in pairs(changes) do
    local old = tree_get(levels[1], leaf)
    if value ~= old then
      tree_set(levels[1], leaf, value)
      local parent = math.floor(leaf / FANOUT)
      deltas[parent] = (deltas[parent] or 0) + (value - old)
    end
  end
  for level = 2, #levels do
    local above = {}
    for node, delta in pairs(deltas) do
      local value = tree_get(levels[level], node) + delta
      if value < 0 then value = 0 end  -- rounding must never make a sum negative
      tree_set(levels[level], node, value)
      local parent = math.floor(node / FANOUT)
      above[parent] = (above[parent] or 0) + delta
    end
    deltas = above
  end
end

local function tree_total(levels)
  return tree_get(levels[#levels], 0)
end

-- The leaf where the running sum of priorities passes `mass`, and its priority.
local function tree_find(levels, mass)
  local node = 0
  local value = 0
  for level = #levels - 1, 1, -1 do
    local first = node * FANOUT
    local block = redis.call('GETRANGE', levels[level], first * 8, first * 8 + FANOUT * 8 - 1)
    local chosen, last_positive, last_value = nil, nil, 0
    for child = 0, #block / 8 - 1 do
      local v = struct.unpack('<d', block, child * 8 + 1)
      if v > 0 then last_positive, last_value = child, v end
      if mass < v then chosen, value = child, v break end
      mass = mass - v
    end
    if chosen == nil then
      -- rounding carried the mass past the last child: take the last one with mass
      chosen, value, mass = last_positive or 0, last_value, last_value / 2
    end
    node = first + chosen
  end
  if #levels == 1 then value = tree_get(levels[1], 0) end
  return node, value
end
