-- Mark or unmark a user present in a room from one node, atomically.
--
-- KEYS[1] where: hash "<user>\n<node>" -> 1   KEYS[2] present: hash user -> node count
-- ARGV[1] "add" | "remove"   ARGV[2] user   ARGV[3] node
-- ARGV[4], ARGV[5] (optional) a presence event (msgpack) and the room's channel: published
--   here when the transition happens. The hub publishes its own users' events itself; a node
--   reaping a dead node's users passes one, so each `left` is published exactly once, by
--   whoever made the user absent, even when several nodes reap at once.
--
-- Returns 1 when the user became present somewhere (add) or is now present nowhere
-- (remove), else 0: the hub publishes a presence event only on those transitions, and two
-- nodes racing must not both see one.

local user = ARGV[2]
local field = user .. "\n" .. ARGV[3]

local function changed()
  if ARGV[4] then
    redis.call("PUBLISH", ARGV[5], ARGV[4])
  end
  return 1
end

if ARGV[1] == "add" then
  if redis.call("HSETNX", KEYS[1], field, 1) == 0 then
    return 0
  end
  if redis.call("HINCRBY", KEYS[2], user, 1) == 1 then
    return changed()
  end
  return 0
end
if redis.call("HDEL", KEYS[1], field) == 0 then
  return 0
end
if redis.call("HINCRBY", KEYS[2], user, -1) > 0 then
  return 0
end
redis.call("HDEL", KEYS[2], user)
return changed()
