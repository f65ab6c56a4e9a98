-- Compare-and-set of a persona's evolved traits, with its journal entry: two workers of one
-- persona that drift at once cannot both win, so neither overwrites the other's step (the
-- loser reloads and drifts again from the winner's traits).
--
-- KEYS[1] traits hash (v: version, traits: JSON)   KEYS[2] journal list, newest first
-- ARGV[1] expected version   ARGV[2] traits JSON   ARGV[3] entry JSON   ARGV[4] journal max
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if version ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', version + 1, 'traits', ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
return 1
