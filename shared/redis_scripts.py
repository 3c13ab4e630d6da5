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

COUNT_DOCUMENT = """
local replies = {redis.call('INCR', KEYS[2])}
for _, word in ipairs(ARGV) do
    replies[#replies + 1] = redis.call('HINCRBY', KEYS[1], word, 1)
end
return table.concat(replies, ',')
"""
"""KEYS: document-frequency hash, document counter; ARGV: a document's distinct words.
Counts the document and its words; returns "count,df1,df2,…" (one string: a client parses a
string far faster than a long list)."""

MOST_SHARED = """
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
local top = {}
for i = 1, math.min(#ids, tonumber(ARGV[1])) do top[i] = ids[i] end
return table.concat(top, ',')
"""
"""KEYS: sets (of members without commas); ARGV: how many. The members found in the most of
the sets, most first, joined by commas."""

HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""
"""KEYS: a hash; ARGV: field, value. Sets the field only on a hash that exists."""
