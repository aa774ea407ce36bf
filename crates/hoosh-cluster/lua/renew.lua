-- Pushes the expiry of leases still running on this instance. Only leases
-- still in the set are renewed (XX): one already reclaimed stays gone.
-- KEYS[1] the lease set; ARGV: ttl ms, lease ids.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i])
end
return renewed
