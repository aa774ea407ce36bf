-- Reserves one request's budget and rate charges on the counters every
-- instance shares: all of them or none. Time is Redis's own (TIME), so the
-- instances' clocks do not matter. Layout: see redis_state.rs.
--
-- KEYS[1] the lease set (id -> expiry ms), KEYS[2] this lease's hash, then
-- per pool: its usage hash for the current window, its reservations hash;
-- then per rate: its TAT key; then per concurrency cap: its counter.
-- ARGV: prefix, lease id, ttl ms, tokens, nanos, risk tokens, risk nanos,
-- pools, rates, slots; per pool: cap tokens, cap nanos (-1: none); per
-- rate: count, period ms, burst, cost; per slot: max in flight.
--
-- Returns {0, remaining tokens, remaining nanos (-1: none), per rate: its
-- used part in us}, {1, pool} when a pool's window has no usage yet (the
-- caller seeds it from the ledger and calls again), {2, rate, retry ms,
-- too large}, {3, pool, 1 tokens | 2 usd, contended}, or {4, slot}.
local now = now_ms()
local prefix, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local want_t, want_n = tonumber(ARGV[4]), tonumber(ARGV[5])
local risk_t, risk_n = tonumber(ARGV[6]), tonumber(ARGV[7])
local npools, nrates, nslots = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])

-- Leases whose instance stopped renewing them give their hold back first.
reclaim(prefix, KEYS[1], now)

-- Concurrency first: a slot of each cap (counted by every instance's leases).
for k = 1, nslots do
  local key = KEYS[2 + 2 * npools + nrates + k]
  if num(redis.call('GET', key)) >= tonumber(ARGV[10 + 2 * npools + 4 * nrates + k]) then return {4, k} end
end

-- Then rates (GCRA, in ms; the same key twice counts the earlier first).
local tats, news, refusal = {}, {}, nil
for j = 1, nrates do
  local key = KEYS[2 + 2 * npools + j]
  local a = 10 + 2 * npools + 4 * (j - 1)
  local count, period, burst, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local interval = 0
  if count > 0 then interval = period / count end
  local tat = tats[key] or num(redis.call('GET', key))
  if tat < now then tat = now end
  local new = tat + cost * interval
  tats[key] = new
  news[j] = new
  local r = nil
  if count == 0 or cost > burst then
    r = {2, j, period, 1}
  elseif new - now > burst * interval + 1e-6 then
    r = {2, j, math.ceil(new - now - burst * interval), 0}
  end
  if r and (refusal == nil or r[3] > refusal[3]) then refusal = r end
end
if refusal then return refusal end

-- Then budgets: every pool is checked; one that is spent outranks one that
-- is only contended (worth waiting for).
local state = {}
for i = 1, npools do
  local used_key, res_key = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  if redis.call('EXISTS', used_key) == 0 then return {1, i} end
  local u = redis.call('HMGET', used_key, 't', 'n')
  local r = redis.call('HMGET', res_key, 't', 'n', 'open', 'rt', 'rn')
  state[i] = {num(u[1]), num(u[2]), num(r[1]), num(r[2]), num(r[3]), num(r[4]), num(r[5])}
end
local function check(cap, used, reserved, risk_open, want, risk, open)
  if cap < 0 then return 0 end
  local at_stake = used + reserved + want
  if at_stake > cap then
    if reserved > 0 and used + want <= cap then return 2 end
    return 1
  end
  if open > 0 and at_stake + risk_open + risk > cap then return 2 end
  return 0
end
local budget_refusal = nil
for i = 1, npools do
  local s = state[i]
  local a = 10 + 2 * (i - 1)
  local cap_t, cap_n = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local verdict, kind = check(cap_t, s[1], s[3], s[6], want_t, risk_t, s[5]), 1
  if verdict == 0 then verdict, kind = check(cap_n, s[2], s[4], s[7], want_n, risk_n, s[5]), 2 end
  if verdict > 0 and (budget_refusal == nil or (budget_refusal[4] == 1 and verdict == 1)) then
    budget_refusal = {3, i, kind, verdict - 1}
  end
end
if budget_refusal then return budget_refusal end

-- Granted: charge the rates, hold the budgets under a lease.
for key, tat in pairs(tats) do
  redis.call('SET', key, string.format('%.4f', tat), 'PX', math.max(math.ceil(tat - now), 0) + 1000)
end
local rem_t, rem_n = -1, -1
local res_keys = {}
for i = 1, npools do
  local s = state[i]
  local a = 10 + 2 * (i - 1)
  local cap_t, cap_n = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local res_key = KEYS[2 + 2 * i]
  redis.call('HINCRBY', res_key, 't', int(want_t))
  redis.call('HINCRBY', res_key, 'n', int(want_n))
  redis.call('HINCRBY', res_key, 'open', 1)
  redis.call('HINCRBY', res_key, 'rt', int(risk_t))
  redis.call('HINCRBY', res_key, 'rn', int(risk_n))
  res_keys[#res_keys + 1] = res_key
  if cap_t >= 0 then
    local left = math.max(cap_t - s[1] - s[3] - want_t, 0)
    if rem_t < 0 or left < rem_t then rem_t = left end
  end
  if cap_n >= 0 then
    local left = math.max(cap_n - s[2] - s[4] - want_n, 0)
    if rem_n < 0 or left < rem_n then rem_n = left end
  end
end
local slot_keys = {}
for k = 1, nslots do
  local key = KEYS[2 + 2 * npools + nrates + k]
  redis.call('INCR', key)
  slot_keys[#slot_keys + 1] = key
end
if npools > 0 or nslots > 0 then
  redis.call('HSET', KEYS[2], 'pools', table.concat(res_keys, '\n'), 't', int(want_t), 'n', int(want_n),
    'rt', int(risk_t), 'rn', int(risk_n), 'slots', table.concat(slot_keys, '\n'))
  redis.call('ZADD', KEYS[1], now + ttl, id)
end
local out = {0, rem_t, rem_n}
for j = 1, nrates do out[#out + 1] = math.floor((news[j] - now) * 1000) end
return out
