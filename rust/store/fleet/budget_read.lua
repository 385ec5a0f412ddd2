-- What `tracesieve check` reads of a shared budget, writing nothing: the
-- fleet's count this period and the leases its live members hold.
-- Replies {'ok', repaired, used, members, held} (used -1: the count there is
-- no count, which the next member's step repairs), {'none'} when the fleet
-- has no count of this period, or {'conflict', settings}.
local budget = tonumber(ARGV[2])
-- (after prelude.lua and taken_over.lua: now, num, sane, h, taken_count, and the settings checked)

if next(h) == nil then return {'none'} end
-- Other settings no live member holds: the next step takes the count over (budget.lua).
local limit = 2 * budget + 1000
local used = sane(taken_count(limit), 0, limit)
if used == nil then
  repaired = repaired + 1
  used = -1
end
local members, held = 0, 0
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'm:' then
    local a, b = string.match(value, '^(%S+) (%S+) %S+$')
    local m_held = sane(a, 0, budget)
    if m_held and live_until(b) then
      members = members + 1
      held = held + m_held
    end
  end
end
return {'ok', num(repaired), num(used), num(members), num(held)}
