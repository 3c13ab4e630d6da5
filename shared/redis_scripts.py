"""Lua scripts that turn many Redis commands into one, where the client's per-command cost
would otherwise dominate (a hundred words or buckets per article)."""

from __future__ import annotations

ADD_TO_SETS = """
for _, key in ipairs(KEYS) do
    redis.call('SADD', key, ARGV[1])
    redis.call('EXPIRE', key, ARGV[2])
end
"""
"""KEYS: sets; ARGV: member, seconds to live. Adds the member to every set."""

STORY_CANDIDATES = """
local counts, ids = {}, {}
for _, key in ipairs(KEYS) do
    for _, member in ipairs(redis.call('SMEMBERS', key)) do
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
return found
"""
"""KEYS: index sets of story ids; ARGV: how many, the prefix of a story's record key. The ids
found in the most of the sets, most first, each followed by its record (ids whose record has
expired are left out). Finding and reading in one call keeps a story lookup to one round trip."""

HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""
"""KEYS: a hash; ARGV: field, value. Sets the field only on a hash that exists."""

SAVE_STORY = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('HSET', KEYS[3], 'cluster', ARGV[2]) end
for i = 4, #KEYS do
    redis.call('SADD', KEYS[i], ARGV[2])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
end
"""
"""KEYS: a story's record, its article counter, the article's signature hash, then the index sets
the story joins; ARGV: the record, the story id, seconds to live. Saves the record, counts the
article, names the story on the signature (if the article has one: its later copies read it
there) and adds the story to the index sets, in one round trip."""
