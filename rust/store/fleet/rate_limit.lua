-- One member's step on a shared rate limit: the token bucket lives here,
-- refilled by the server's clock, and a member takes a slice of its tokens.
-- Replies {'ok', repaired, grant, members}, or {'conflict', settings}.
local key = KEYS[1]
local settings, id = ARGV[1], 'm:' .. ARGV[2]
local rate, burst, request, lease_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
-- (after prelude.lua and refused.lua: now, num, sane, h, and the settings checked)

-- Tokens beyond the bucket or below empty, or a stamp from the future (it
-- would refill nothing for as long), are garbage: the bucket starts again
-- empty at the server's time, refilling at its rate.
local tokens, stamp = sane(h.tokens, 0, burst), sane(h.stamp, 0, now + 60000)
if h.tokens == nil and h.stamp == nil then
  tokens, stamp = burst, now
elseif not tokens or not stamp then
  repaired = repaired + 1
  tokens, stamp = 0, now
end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate / 1000)
local grant = math.max(0, math.min(math.floor(request), math.floor(tokens)))
tokens = tokens - grant

local members = 1
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'm:' and field ~= id then
    if live_until(value) then
      members = members + 1
    else
      local until_ms = tonumber(value)
      if not (until_ms and until_ms == until_ms and until_ms <= now) then repaired = repaired + 1 end
      redis.call('HDEL', key, field)
    end
  end
end
redis.call('HSET', key, 'settings', settings, 'tokens', num(tokens), 'stamp', num(now), id, num(now + lease_ms))
redis.call('PEXPIRE', key, math.max(2 * lease_ms, math.ceil(1000 * burst / rate) + 60000))
return {'ok', num(repaired), num(grant), num(members)}
