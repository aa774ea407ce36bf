-- Put before each script's body (see redis_state.rs): the helpers every
-- lease script shares.

-- Redis's clock in ms: every instance reads the same one.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- An integer as HINCRBY takes it (Lua would print large ones as 1e+15).
local function int(x) return string.format('%d', x) end
local function num(v) return tonumber(v or '0') or 0 end

-- Gives back what lease `id` holds in each pool and the concurrency slots
-- it takes, and forgets the lease.
local function release(prefix, leases, id)
  local key = prefix .. 'lease:' .. id
  local f = redis.call('HMGET', key, 'pools', 't', 'n', 'rt', 'rn', 'slots')
  if f[1] then
    for res in string.gmatch(f[1], '[^\n]+') do
      redis.call('HINCRBY', res, 't', int(-num(f[2])))
      redis.call('HINCRBY', res, 'n', int(-num(f[3])))
      redis.call('HINCRBY', res, 'open', -1)
      redis.call('HINCRBY', res, 'rt', int(-num(f[4])))
      redis.call('HINCRBY', res, 'rn', int(-num(f[5])))
    end
  end
  if f[6] then
    for slot in string.gmatch(f[6], '[^\n]+') do
      if redis.call('DECR', slot) <= 0 then redis.call('DEL', slot) end
    end
  end
  redis.call('DEL', key)
  redis.call('ZREM', leases, id)
end

-- Releases up to 256 leases whose instance stopped renewing them.
local function reclaim(prefix, leases, now)
  for _, expired in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 256)) do
    release(prefix, leases, expired)
  end
end

