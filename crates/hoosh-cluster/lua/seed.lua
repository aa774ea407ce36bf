-- Starts a pool's usage for a window from the ledger's sums, unless another
-- instance (or a settle) got there first. KEYS[1] the usage hash; ARGV:
-- tokens, nanos, ttl ms (0: never expires).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'n', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
