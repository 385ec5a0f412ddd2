-- A piece made with other settings is refused, never trusted (a rate limit's
-- or windows' key expires soon after its last member's step).
if h.settings and h.settings ~= ARGV[1] then return {'conflict', string.sub(h.settings, 1, 400)} end
