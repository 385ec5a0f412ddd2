-- The start of every fleet script: the server's time in milliseconds, the
-- piece's hash (KEYS[1]) read once, and the settings check (ARGV[1]): a piece
-- made with other settings is refused, never trusted.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function num(x) return string.format('%.17g', x) end
local h = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
if h.settings and h.settings ~= ARGV[1] then return {'conflict', h.settings} end
