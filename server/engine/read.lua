-- Read a room's log by seq, with what is retained, in one atomic step.
--
-- KEYS[1] seq counter   KEYS[2] stream
-- ARGV[1] "after" | "before"
-- ARGV[2] after: return seq > this | before: return seq < this ("" = no bound)
-- ARGV[3] limit   ARGV[4] history
--
-- Returns {last, first_retained, msg...}: "after" oldest first, "before" newest first.
-- first_retained = max(oldest entry, last - history + 1): append.lua trims approximately
-- (MAXLEN ~), and the few older entries still stored are hidden here, so the log reads as
-- exactly the last `history` messages.

local last = tonumber(redis.call("GET", KEYS[1]) or "0")
local history = tonumber(ARGV[4])
local first = last + 1
local oldest = redis.call("XRANGE", KEYS[2], "-", "+", "COUNT", 1)[1]
if oldest then
  first = math.max(tonumber(string.match(oldest[1], "^%d+")), last - history + 1)
end

local out = {last, first}
local entries = {}
if ARGV[1] == "after" then
  local from = math.max(tonumber(ARGV[2]) + 1, first)
  if from <= last then -- also keeps ids below 1e14, where Lua prints integers exactly
    entries = redis.call("XRANGE", KEYS[2], from, last, "COUNT", ARGV[3])
  end
else
  local upto = last
  if ARGV[2] ~= "" then
    upto = math.min(tonumber(ARGV[2]) - 1, last)
  end
  if upto >= first then
    entries = redis.call("XREVRANGE", KEYS[2], upto, first, "COUNT", ARGV[3])
  end
end
for _, entry in ipairs(entries) do
  out[#out + 1] = entry[2][2]
end
return out
