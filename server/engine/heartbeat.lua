-- One node's heartbeat: push its liveness deadline, list nodes whose deadline passed.
--
-- KEYS[1] nodes: zset node -> deadline (ms)
-- ARGV[1] node   ARGV[2] ttl, ms   ARGV[3] at most this many dead nodes
--
-- Returns {registered, dead...}: registered is 1 when this node was not in the set (its
-- first beat, or it was reaped as dead while it could not reach Redis: it must then mark its
-- present users again). Deadlines use the Redis clock, so nodes need no synchronized clocks.

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local registered = redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local dead = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, ARGV[3])
table.insert(dead, 1, registered)
return dead
