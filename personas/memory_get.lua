-- Read one person's memory and rank it most recently used (as InMemoryStore's LRU does).
--
-- KEYS[1] memory key   KEYS[2] people zset
-- ARGV[1] person
local data = redis.call('GET', KEYS[1])
if data then
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[2], 'XX', (tonumber(top[2]) or 0) + 1, ARGV[1])
end
return data
