-- Pushes the expiry of leases still running on this instance. Only leases
-- still in the set are renewed (XX): one already reclaimed stays gone.
-- Then gives back the holds of leases nobody renewed (a crashed
-- instance's), so they are released within a renewal period of expiring
-- even when no reservation comes to reclaim them.
-- KEYS[1] the lease set; ARGV: prefix, ttl ms, lease ids.
local now = now_ms()
local prefix = ARGV[1]

reclaim(prefix, KEYS[1], now)
local renewed = 0
for i = 3, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[i])
end
return renewed
