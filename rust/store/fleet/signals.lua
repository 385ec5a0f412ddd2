-- One member's step on shared error windows: store its current window
-- totals (valid for one lease), and learn the sum of the other live members'.
-- Replies {'ok', repaired, members, sums...}, or {'conflict', settings}.
local key = KEYS[1]
local settings, id, lease_ms, counts = ARGV[1], 'm:' .. ARGV[2], tonumber(ARGV[3]), ARGV[4]
-- (after prelude.lua and refused.lua: now, num, sane, live_until, h, and the settings checked)

local n = 0
for _ in string.gmatch(counts, '%S+') do n = n + 1 end
local sums = {}
for i = 1, n do sums[i] = 0 end
local members = 1
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'm:' and field ~= id then
    -- A member's words: its lease deadline, then one count per window; a
    -- count that is not a whole number a window could hold is garbage.
    local words, valid = {}, true
    for word in string.gmatch(value, '%S+') do
      if #words > n then valid = false break end
      words[#words + 1] = word
    end
    valid = valid and #words == n + 1 and live_until(words[1]) ~= nil
    for i = 2, #words do
      valid = valid and sane(words[i], 0, 1e12) ~= nil
    end
    if valid then
      members = members + 1
      for i = 1, n do sums[i] = sums[i] + tonumber(words[i + 1]) end
    else
      local until_ms = tonumber(words[1])
      if not (until_ms and until_ms == until_ms and until_ms <= now and #words == n + 1) then repaired = repaired + 1 end
      redis.call('HDEL', key, field)
    end
  end
end
redis.call('HSET', key, 'settings', settings, id, num(now + lease_ms) .. ' ' .. counts)
redis.call('PEXPIRE', key, 2 * lease_ms)
local reply = {'ok', num(repaired), num(members)}
for i = 1, n do reply[#reply + 1] = num(sums[i]) end
return reply
