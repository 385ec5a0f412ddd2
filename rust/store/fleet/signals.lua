-- One member's step on shared error windows: store its current window
-- totals (valid for one lease), and learn the sum of the other live members'.
-- Replies {'ok', members, sums...}, or {'conflict', settings}.
local key = KEYS[1]
local settings, id, lease_ms, counts = ARGV[1], 'm:' .. ARGV[2], tonumber(ARGV[3]), ARGV[4]
-- (after prelude.lua: now, num, h, and the settings checked)

local n = 0
for _ in string.gmatch(counts, '%S+') do n = n + 1 end
local sums = {}
for i = 1, n do sums[i] = 0 end
local members = 1
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'm:' and field ~= id then
    local words = {}
    for word in string.gmatch(value, '%S+') do words[#words + 1] = tonumber(word) end
    if words[1] and words[1] > now and #words == n + 1 then
      members = members + 1
      for i = 1, n do sums[i] = sums[i] + (words[i + 1] or 0) end
    else
      redis.call('HDEL', key, field)
    end
  end
end
redis.call('HSET', key, 'settings', settings, id, num(now + lease_ms) .. ' ' .. counts)
redis.call('PEXPIRE', key, 2 * lease_ms)
local reply = {'ok', num(members)}
for i = 1, n do reply[#reply + 1] = num(sums[i]) end
return reply
