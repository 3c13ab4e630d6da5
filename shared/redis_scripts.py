"""Lua scripts that turn many Redis commands into one, where the client's per-command cost
would otherwise dominate (a hundred words or buckets per article)."""

from __future__ import annotations

NEAREST_IN_BUCKETS = """
local prefix, slices, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local found, touched, n = {}, {}, 4 + slices
while n <= #ARGV do
    local ref, count, refs = ARGV[n], tonumber(ARGV[n + 1]), {}
    for b = n + 2, n + 1 + count do
        local part, field = string.sub(ARGV[b], 1, 3), string.sub(ARGV[b], 4)
        local key, mine = prefix .. ARGV[4] .. ':' .. part, nil
        for s = 4, 3 + slices do
            local held = redis.call('HGET', prefix .. ARGV[s] .. ':' .. part, field)
            if held then refs[#refs + 1] = held end
            if s == 4 then mine = held end
        end
        if not mine then
            redis.call('HSET', key, field, ref)
        elseif not string.find(mine, ref, 1, true) then
            redis.call('HSET', key, field, mine .. ref)
        end
        touched[key] = true
    end
    found[#found + 1] = table.concat(refs)
    n = n + 2 + count
end
for key in pairs(touched) do redis.call('EXPIRE', key, ttl) end
return found
"""
"""ARGV: the bucket hashes' prefix, how many time slices are read, seconds to live, the slices
(the current one first), then for each article its 12-character reference, how many buckets
follow, and its buckets (3 characters naming the hash, the rest the field). For each article in
turn, the references its buckets held in the slices read (earlier articles of the call
included, concatenated), then it is filed in the current slice: a batch is filed and looked up
in one call, and memory is a few hashes per slice rather than a key per bucket."""

STORY_CANDIDATES = """
local results, first = {}, 1
for n = 3, #ARGV do
    local last = first + tonumber(ARGV[n]) - 1
    local counts, ids = {}, {}
    for k = first, last do
        for _, member in ipairs(redis.call('SMEMBERS', KEYS[k])) do
            if not counts[member] then
                counts[member] = 0
                ids[#ids + 1] = member
            end
            counts[member] = counts[member] + 1
        end
    end
    table.sort(ids, function(a, b) return counts[a] > counts[b] or (counts[a] == counts[b] and a < b) end)
    local found = {}
    for i = 1, math.min(#ids, tonumber(ARGV[1])) do
        local record = redis.call('GET', ARGV[2] .. ids[i])
        if record then
            found[#found + 1] = ids[i]
            found[#found + 1] = record
        end
    end
    results[#results + 1] = found
    first = last + 1
end
return results
"""
"""KEYS: index sets of story ids, one group per article, group after group; ARGV: how many,
the prefix of a story's record key, then the size of each group. For each group, the ids found
in the most of its sets, most first, each followed by its record (ids whose record has expired
are left out). Finding and reading a batch's candidates in one call keeps a batch's story
lookup to one round trip."""

HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""
"""KEYS: a hash; ARGV: field, value. Sets the field only on a hash that exists."""

SAVE_STORY = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local signature = redis.call('GET', KEYS[3])
if signature then
    local first = string.find(signature, '|', 1, true)
    local second = string.find(signature, '|', first + 1, true)
    redis.call('SET', KEYS[3], string.sub(signature, 1, first) .. ARGV[2] .. string.sub(signature, second), 'KEEPTTL')
end
for i = 4, #KEYS do
    redis.call('SADD', KEYS[i], ARGV[2])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
end
"""
"""KEYS: a story's record, its article counter, the article's signature hash, then the index sets
the story joins; ARGV: the record, the story id, seconds to live. Saves the record, counts the
article, names the story as the cluster on the signature (if the article has one: its later
copies read it there) and adds the story to the index sets, in one round trip."""
