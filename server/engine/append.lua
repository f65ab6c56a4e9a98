-- Append one msg to a room, atomically: cid check, next seq, stream append with retention,
-- cid record, inbox logs, publish. The caller acks only after this returned.
--
-- KEYS[1] seq counter   KEYS[2] stream   KEYS[3] cid record (only when the msg has a cid)
-- then the inbox logs of a dm's sides (ARGV[6] of them; none for other rooms)
-- ARGV[1] the msg as a msgpack map, everything but "seq" (mid included: it is random, so
--         Python picks it; only seq needs this atomic step)
-- ARGV[2] history (messages retained)   ARGV[3] the room's channel
-- ARGV[4] digest of the text (fixed length)   ARGV[5] cid ttl, ms
-- ARGV[6] number of inbox logs   ARGV[7] the room   ARGV[8] entries kept per inbox log
-- ARGV[9] inbox log ttl, ms
--
-- An inbox log entry (room, seq) gets an id on the Redis clock (XADD *): a node that lost
-- its Pub/Sub connection reads its users' logs after reconnecting to find dm rooms it had
-- never delivered from (redis_inbox.py). Written here, in the same atomic step as the msg,
-- so no reader can see the msg stored and published but not yet logged.
--
-- Returns {"new", stored} | {"dup", stored of the first post} | {"conflict"}.
--
-- One encoding, msgpack, end to end: the stream entry, the cid record, the Pub/Sub payload
-- and what Python decodes are the same bytes. This script never decodes them: a cjson or
-- cmsgpack round trip in Lua 5.1 loses information (an empty map becomes an array, a nil
-- ends an array, integers past 2^53 and cjson's 14 significant digits get rounded). It only
-- appends the "seq" entry to the map, which is byte work on the map header.
--
-- Retention is `MAXLEN ~ history`: Redis trims whole stream nodes, so up to ~100 extra old
-- entries may linger. read.lua hides them (first retained = max(oldest, last - history + 1)),
-- so readers see exactly the last `history`, as MemoryEngine keeps them.

local function with_seq(map, seq)
  local tail = cmsgpack.pack("seq") .. cmsgpack.pack(seq)
  local head = string.byte(map, 1)
  if head >= 0x80 and head < 0x8f then -- fixmap with room for one more entry
    return string.char(head + 1) .. string.sub(map, 2) .. tail
  elseif head == 0x8f then -- fixmap of 15: becomes a map16 of 16
    return string.char(0xde, 0, 16) .. string.sub(map, 2) .. tail
  elseif head == 0xde then -- map16
    local n = string.byte(map, 2) * 256 + string.byte(map, 3) + 1
    return string.char(0xde, math.floor(n / 256), n % 256) .. string.sub(map, 4) .. tail
  end
  error("os1 append: the msg is not a msgpack map")
end

local digest = ARGV[4]
local inboxes = tonumber(ARGV[6])
local cid_key = nil
if #KEYS - inboxes == 3 then
  cid_key = KEYS[3]
end
if cid_key then
  local seen = redis.call("GET", cid_key)
  if seen then
    if string.sub(seen, 1, #digest) ~= digest then
      return {"conflict"}
    end
    return {"dup", string.sub(seen, #digest + 1)}
  end
end

local seq = redis.call("INCR", KEYS[1])
local stored = with_seq(ARGV[1], seq)
-- The entry id is the seq itself, so reads by seq are XRANGE by id, and Redis refuses an
-- id that is not above the last one: a seq can never be stored twice.
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[2], seq .. "-0", "m", stored)
if cid_key then
  redis.call("SET", cid_key, digest .. stored, "PX", ARGV[5])
end
for i = #KEYS - inboxes + 1, #KEYS do
  redis.call("XADD", KEYS[i], "MAXLEN", "~", ARGV[8], "*", "r", ARGV[7], "s", seq)
  redis.call("PEXPIRE", KEYS[i], ARGV[9])
end
redis.call("PUBLISH", ARGV[3], stored)
return {"new", stored}
