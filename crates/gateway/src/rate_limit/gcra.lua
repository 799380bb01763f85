-- GCRA for one organization and route class, atomically in Redis.
--
-- KEYS[1]  the key, holding the theoretical arrival time (TAT) in
--          microseconds of the Redis server's clock
-- ARGV[1]  emission interval: microseconds between calls at the steady rate
-- ARGV[2]  tolerance: how far the TAT may run ahead of now, the interval
--          times (limit - 1), so a full allowance admits `limit` calls at once
--
-- Returns {1, 0} when the call is admitted, {0, wait} when refused, wait
-- being the microseconds until a call would be admitted.
--
-- The clock is the server's (TIME), so gateways with skewed clocks agree.
-- The key expires when the TAT is reached, i.e. when the allowance is full
-- again and the key holds nothing a fresh one would not: idle organizations
-- cost no memory. Redis >= 5 replicates the effects of a script, which is
-- what allows a write after TIME.
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then
  tat = now
end
local earliest = tat - tolerance
if now < earliest then
  return {0, earliest - now}
end
local next_tat = tat + interval
-- Format as an integer: Lua would write 16 digits as 1.76e+15 and lose them.
redis.call('SET', KEYS[1], string.format('%d', next_tat),
  'PX', string.format('%d', math.ceil((next_tat - now) / 1000)))
return {1, 0}
