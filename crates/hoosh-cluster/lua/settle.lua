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
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local prefix, id = ARGV[1], ARGV[2]
local npools, nrates = tonumber(ARGV[3]), tonumber(ARGV[4])
local t, n = ARGV[5], ARGV[6]

local function int(x) return string.format('%d', x) end
local function num(v) return tonumber(v or '0') or 0 end

local f = redis.call('HMGET', KEYS[2], 'pools', 't', 'n', 'rt', 'rn')
if f[1] then
  for res in string.gmatch(f[1], '[^\n]+') do
    redis.call('HINCRBY', res, 't', int(-num(f[2])))
    redis.call('HINCRBY', res, 'n', int(-num(f[3])))
    redis.call('HINCRBY', res, 'open', -1)
    redis.call('HINCRBY', res, 'rt', int(-num(f[4])))
    redis.call('HINCRBY', res, 'rn', int(-num(f[5])))
  end
  redis.call('DEL', KEYS[2])
end
redis.call('ZREM', KEYS[1], id)

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
