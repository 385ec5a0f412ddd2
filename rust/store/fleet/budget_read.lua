-- What `tracesieve check` reads of a shared budget, writing nothing: the
-- fleet's count this period and the leases its live members hold.
-- Replies {'ok', repaired, used, members, held} (used -1: the count there is
-- no count, which the next member's step repairs), {'none'} when the fleet
-- has no count of this period, or {'conflict', settings}.
local budget = tonumber(ARGV[2])
-- (after prelude.lua and taken_over.lua: now, num, sane, h, and the settings checked)

if next(h) == nil then return {'none'} end
local counted = h.used
if h.settings and h.settings ~= ARGV[1] then
  -- Other settings no live member holds: the next step takes the count over (budget.lua).
  local spent_before = sane(h.used, 0, 1e15)
  if spent_before and spent_before > 2 * budget + 1000 then counted = num(2 * budget + 1000) end
end
local used = sane(counted, 0, 2 * budget + 1000)
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
