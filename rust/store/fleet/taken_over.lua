-- A budget made with other settings is refused while a member holding a lease
-- under them is live: two budgets given one fleet, or a rolling restart still
-- under way. Once none is, these settings take it over, count and all, as a
-- reload carries a count over: its hash outlives the period, so refusing it
-- for good left a changed budget's processes on their fallback share, as if
-- Redis were down, until the period ended.
if h.settings and h.settings ~= ARGV[1] then
  for field, value in pairs(h) do
    if string.sub(field, 1, 2) == 'm:' and live_until(string.match(value, '^%S+ (%S+) %S+$')) then
      return {'conflict', string.sub(h.settings, 1, 400)}
    end
  end
end
-- What the count is under these settings: as it stands, or, taken over from
-- other settings (a budget lowered, say), at most `limit`: a count past it is
-- what was spent, not garbage.
local function taken_count(limit)
  if h.settings and h.settings ~= ARGV[1] then
    local spent_before = sane(h.used, 0, 1e15)
    if spent_before and spent_before > limit then return num(limit) end
  end
  return h.used
end
