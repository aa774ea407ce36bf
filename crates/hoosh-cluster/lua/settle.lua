-- Ends one request on the shared counters: its lease (if still there)
-- gives its hold back, its actual cost is added to each pool's usage in
-- the window current now, and each token rate is corrected from the
-- estimate to the actual count. A pool whose window has no usage hash yet
-- is left alone: the next reservation seeds it from the ledger, which
-- holds this request's row.
--
-- KEYS[1] the lease set, KEYS[2] the lease's hash, then per pool: its usage
-- hash for the current window; then per token rate: its TAT key.
-- ARGV: prefix, lease id, pools, rates, tokens, nanos; per rate: count,
-- period ms, tokens to add (negative: a refund).
local now = now_ms()
local prefix, id = ARGV[1], ARGV[2]
local npools, nrates = tonumber(ARGV[3]), tonumber(ARGV[4])
local t, n = ARGV[5], ARGV[6]

release(prefix, KEYS[1], id)

for i = 1, npools do
  local used_key = KEYS[2 + i]
  if redis.call('EXISTS', used_key) == 1 then
    redis.call('HINCRBY', used_key, 't', t)
    redis.call('HINCRBY', used_key, 'n', n)
  end
end

for j = 1, nrates do
  local key = KEYS[2 + npools + j]
  local a = 6 + 3 * (j - 1)
  local count, period, delta = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local tat = redis.call('GET', key)
  if tat and count > 0 and delta ~= 0 then
    local moved = math.max(tonumber(tat), now) + delta * period / count
    if moved < now then moved = now end
    redis.call('SET', key, string.format('%.4f', moved), 'PX', math.ceil(moved - now) + 1000)
  end
end
return 1
