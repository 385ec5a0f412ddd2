-- One member's step on a shared budget (one hash per period): add what it
-- spent since its last step, learn the fleet's count and demand, and renew
-- its lease from what the fleet's line allows and the other leases leave.
-- Replies {'ok', repaired, grant, used, epoch, members, demand, spans,
-- entries, slot, rank} (rank: how many live members' ids sort before this
-- one's), followed by 'taken' and the settings it was held with when this
-- step took it over, or {'conflict', settings} when a live member holds it with other settings.
local key = KEYS[1]
local settings, id, epoch_seen = ARGV[1], 'm:' .. ARGV[2], ARGV[3]
local fleet_seen, spent, entries = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local held, request, ceiling = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local demand, slot = tonumber(ARGV[10]), tonumber(ARGV[11])
local lease_ms, keep_ms = tonumber(ARGV[12]), tonumber(ARGV[13])
local budget = tonumber(ARGV[14])
-- (after prelude.lua and taken_over.lua: now, num, sane, h, taken_count, and the settings checked)

local taken_from = h.settings ~= nil and h.settings ~= settings and h.settings or nil

-- A count beyond twice the budget, or a non-number, is no count of this budget.
local limit = 2 * budget + 1000
local counted = taken_count(limit)
local epoch, used = h.epoch, sane(counted, 0, limit)
if epoch ~= nil and not string.match(epoch, '^%d+$') or (counted ~= nil and used == nil) then
  repaired = repaired + 1
  epoch, used = nil, nil
end
if not epoch or not used then
  -- Made afresh (a new period, a Redis that lost its data, or a count that
  -- was garbage): the best record of what was spent is what this member saw.
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  used = fleet_seen
elseif epoch_seen ~= '0' and epoch_seen ~= epoch then
  -- This member counted with an earlier state (Redis restarted empty since):
  -- what it saw of the fleet then was spent.
  used = math.max(used, fleet_seen)
end
used = used + spent
local spans = sane(h.spans or 0, 0, 1e15)
local old_entries = sane(h.entries or 0, 0, 1e15)
local old_slot = sane(h.slot or 0, 0, 1e9)
if not spans or not old_entries or not old_slot then
  repaired = repaired + 1
  spans, old_entries, old_slot = spans or 0, old_entries or 0, old_slot or 0
end
spans = spans + spent
local kept_entries = old_entries + entries
slot = math.max(slot, old_slot)

-- Leases other live members hold (spent but unreported spans among them),
-- and their demand; long-expired members are forgotten. A member whose claim
-- could not have been leased (more than the budget, a deadline beyond any
-- lease, a demand that is no rate) is garbage: deleted and counted.
local others, fleet_demand, members, rank = 0, demand, 1, 0
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'm:' and field ~= id then
    local a, b, c = string.match(value, '^(%S+) (%S+) (%S+)$')
    local m_held, m_demand = sane(a, 0, budget), sane(c, 0, 1e12)
    local m_until = tonumber(b)
    if m_held and m_demand and live_until(b) then
      others = others + m_held
      fleet_demand = fleet_demand + m_demand
      members = members + 1
      if field < id then rank = rank + 1 end
    elseif m_held and m_demand and m_until and m_until == m_until and m_until <= now and m_until + keep_ms >= now then
      -- expired lately: kept a while for its record, holding nothing
    else
      if not (m_held and m_demand and m_until and m_until == m_until and m_until <= now) then repaired = repaired + 1 end
      redis.call('HDEL', key, field)
    end
  end
end
local room = math.floor(ceiling - used - others - held)
local grant = math.max(0, math.min(math.ceil(request - held), room))
redis.call('HSET', key, 'settings', settings, 'epoch', epoch, 'used', num(used), 'spans', num(spans),
  'entries', num(kept_entries), 'slot', num(slot), id, num(held + grant) .. ' ' .. num(now + lease_ms) .. ' ' .. num(demand))
redis.call('PEXPIRE', key, keep_ms)
local reply = {'ok', num(repaired), num(grant), num(used), epoch, num(members), num(fleet_demand), num(spans), num(kept_entries), num(slot), num(rank)}
if taken_from then
  reply[#reply + 1] = 'taken'
  reply[#reply + 1] = string.sub(taken_from, 1, 400)
end
return reply
