-- One member's step on a shared budget (one hash per period): add what it
-- spent since its last step, learn the fleet's count and demand, and renew
-- its lease from what the fleet's line allows and the other leases leave.
-- Replies {'ok', grant, used, epoch, members, demand, spans, entries, slot,
-- rank} (rank: how many live members' ids sort before this one's),
-- or {'conflict', settings} when the piece was made with other settings.
local key = KEYS[1]
local settings, id, epoch_seen = ARGV[1], 'm:' .. ARGV[2], ARGV[3]
local fleet_seen, spent, entries = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local held, request, ceiling = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local demand, slot = tonumber(ARGV[10]), tonumber(ARGV[11])
local lease_ms, keep_ms = tonumber(ARGV[12]), tonumber(ARGV[13])
-- (after prelude.lua: now, num, h, and the settings checked)

local epoch, used = h.epoch, tonumber(h.used)
if not epoch or not used then
  -- Made afresh (a new period, or a Redis that lost its data): the best
  -- record of what was spent is what this member saw of the fleet.
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  used = fleet_seen
elseif epoch_seen ~= '0' and epoch_seen ~= epoch then
  -- This member counted with an earlier state (Redis restarted empty since):
  -- what it saw of the fleet then was spent.
  used = math.max(used, fleet_seen)
end
used = used + spent
local spans = (tonumber(h.spans) or 0) + spent
local kept_entries = (tonumber(h.entries) or 0) + entries
slot = math.max(slot, tonumber(h.slot) or 0)

-- Leases other live members hold (spent but unreported spans among them),
-- and their demand; long-expired members are forgotten.
local others, fleet_demand, members, rank = 0, demand, 1, 0
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'm:' and field ~= id then
    local m_held, m_until, m_demand = string.match(value, '^(%S+) (%S+) (%S+)$')
    m_held, m_until, m_demand = tonumber(m_held), tonumber(m_until), tonumber(m_demand)
    if m_held and m_until and m_demand and m_until > now then
      others = others + m_held
      fleet_demand = fleet_demand + m_demand
      members = members + 1
      if field < id then rank = rank + 1 end
    elseif not m_until or m_until + keep_ms < now then
      redis.call('HDEL', key, field)
    end
  end
end
local room = math.floor(ceiling - used - others - held)
local grant = math.max(0, math.min(math.ceil(request - held), room))
redis.call('HSET', key, 'settings', settings, 'epoch', epoch, 'used', num(used), 'spans', num(spans),
  'entries', num(kept_entries), 'slot', num(slot), id, num(held + grant) .. ' ' .. num(now + lease_ms) .. ' ' .. num(demand))
redis.call('PEXPIRE', key, keep_ms)
return {'ok', num(grant), num(used), epoch, num(members), num(fleet_demand), num(spans), num(kept_entries), num(slot), num(rank)}
