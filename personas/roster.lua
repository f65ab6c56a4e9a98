-- One worker's heartbeat in its persona's roster, and the roster back: who is alive, and how
-- many conversations each holds. Deadlines are on the Redis clock, so workers on machines
-- whose clocks disagree still agree on who is alive.
--
-- KEYS[1] zset worker -> lease deadline (ms)   KEYS[2] hash worker -> conversations now
-- ARGV[1] worker   ARGV[2] lease (ms; 0 = leave now)   ARGV[3] conversations now
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
if lease > 0 then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  -- Both keys outlive the last heartbeat by one lease, no more: nothing is left behind.
  for _, key in ipairs(KEYS) do
    if redis.call('PTTL', key) < lease then
      redis.call('PEXPIRE', key, lease)
    end
  end
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, worker in ipairs(dead) do
  redis.call('ZREM', KEYS[1], worker)
  redis.call('HDEL', KEYS[2], worker)
end
return redis.call('HGETALL', KEYS[2])
