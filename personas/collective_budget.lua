-- The collective's budget shared by every hub node: a sliding window of collective turns,
-- on the Redis clock so nodes whose clocks disagree still count one window.
--
-- KEYS[1] zset turn id -> time (ms)
-- ARGV[1] turn id   ARGV[2] limit   ARGV[3] window (ms)
-- Returns {turns counted before, ms until a place frees (0: this turn was counted)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if limit < 1 then
  return {used, window}
end
if used >= limit then
  -- the turn whose leaving frees a place for this one
  local oldest = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
  return {used, math.max(1, tonumber(oldest[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], window)  -- the log never outlives its window
return {used, 0}
