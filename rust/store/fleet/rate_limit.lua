-- One member's step on a shared rate limit: the token bucket lives here,
-- refilled by the server's clock, and a member takes a slice of its tokens.
-- Replies {'ok', grant, members}, or {'conflict', settings}.
local key = KEYS[1]
local settings, id = ARGV[1], 'm:' .. ARGV[2]
local rate, burst, request, lease_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
-- (after prelude.lua: now, num, h, and the settings checked)

local tokens, stamp = tonumber(h.tokens), tonumber(h.stamp)
if not tokens or not stamp then tokens, stamp = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate / 1000)
local grant = math.max(0, math.min(math.floor(request), math.floor(tokens)))
tokens = tokens - grant

local members = 1
for field, value in pairs(h) do
  if string.sub(field, 1, 2) == 'm:' and field ~= id then
    local m_until = tonumber(value)
    if m_until and m_until > now then
      members = members + 1
    else
      redis.call('HDEL', key, field)
    end
  end
end
redis.call('HSET', key, 'settings', settings, 'tokens', num(tokens), 'stamp', num(now), id, num(now + lease_ms))
redis.call('PEXPIRE', key, math.max(2 * lease_ms, math.ceil(1000 * burst / rate) + 60000))
return {'ok', num(grant), num(members)}
