-- Store one person's memory and rank it most recently used among its persona's people;
-- past the bound, the least recently used go, memory and all. Ranks are a counter (the top
-- score + 1), not a clock: several puts in one millisecond must still keep their order.
-- Evicted memory keys are not in KEYS, but they share the {persona} hash tag, so the slot.
--
-- KEYS[1] memory key   KEYS[2] people zset
-- ARGV[1] person   ARGV[2] JSON   ARGV[3] max people   ARGV[4] memory key prefix of the persona
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], (tonumber(top[2]) or 0) + 1, ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do
    redis.call('DEL', ARGV[4] .. old[i])
  end
end
return over
