-- The start of every fleet script: the server's time in milliseconds and the
-- piece's hash (KEYS[1]) read once; a settings check follows it (ARGV[1]:
-- refused.lua or taken_over.lua). Every number read from
-- the hash is checked (`sane`) before use: what another client wrote there is
-- data, and a value that is not finite and in range is repaired or ignored,
-- never obeyed, and counted in `repaired` (every reply's first number).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function num(x) return string.format('%.17g', x) end
local repaired = 0
-- x as a number if it is one, finite and within [lo, hi]; else nil.
local function sane(x, lo, hi)
  x = tonumber(x)
  if x ~= nil and x == x and x >= lo and x <= hi then return x end
  return nil
end
-- A member's lease deadline: in the future, and no further than any lease a
-- member can be granted runs (three spacings of its steps, which are at most
-- a day apart), and a minute's margin.
local function live_until(x)
  return sane(x, now + 1, now + 3 * 86400000 + 60000)
end
local h = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
