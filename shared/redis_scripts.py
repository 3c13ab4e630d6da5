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

# Helpers of the story scripts: commands over any number of arguments (Lua's unpack has a
# limit), and whether a concatenation of fixed-width references holds one at a boundary.
_STORY_HELPERS = """
local function chunked(command, key, args)
    local replies = {}
    for i = 1, #args, 500 do
        local reply = redis.call(command, key, unpack(args, i, math.min(i + 499, #args)))
        if type(reply) == 'table' then
            for _, value in ipairs(reply) do replies[#replies + 1] = value end
        end
    end
    return replies
end
local function position(held, ref, width)
    local at = string.find(held, ref, 1, true)
    while at and (at - 1) % width ~= 0 do at = string.find(held, ref, at + 1, true) end
    return at
end
"""

STORY_CANDIDATES = (
    _STORY_HELPERS
    + """
local wanted, width, articles = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fields, plans, n = {}, {}, 4
for a = 1, articles do
    local slices, own = {}, {}
    for s = 1, tonumber(ARGV[n]) do slices[s] = tonumber(ARGV[n + s]) end
    n = n + #slices + 1
    for i = 1, #ARGV[n], 4 do own[#own + 1] = string.sub(ARGV[n], i, i + 3) end
    for _, k in ipairs(slices) do
        local wanted_here = fields[k] or {list = {}, seen = {}}
        fields[k] = wanted_here
        for _, field in ipairs(own) do
            if not wanted_here.seen[field] then
                wanted_here.seen[field] = true
                wanted_here.list[#wanted_here.list + 1] = field
            end
        end
    end
    plans[a] = {slices, own}
    n = n + 1
end
local held = {}
for k, wanted_here in pairs(fields) do
    local values, found = chunked('HMGET', KEYS[k], wanted_here.list), {}
    for i, field in ipairs(wanted_here.list) do found[field] = values[i] end
    held[k] = found
end
local results, records, record_refs = {}, {}, {}
for a, plan in ipairs(plans) do
    local counts, refs = {}, {}
    for _, k in ipairs(plan[1]) do
        for _, field in ipairs(plan[2]) do
            local value = held[k][field]
            if value then
                for i = 1, #value, width do
                    local ref = string.sub(value, i, i + width - 1)
                    if counts[ref] then
                        counts[ref] = counts[ref] + 1
                    else
                        counts[ref] = 1
                        refs[#refs + 1] = ref
                    end
                end
            end
        end
    end
    table.sort(refs, function(x, y) return counts[x] > counts[y] or (counts[x] == counts[y] and x < y) end)
    local top = {}
    for i = 1, math.min(#refs, wanted) do
        top[i] = refs[i]
        if not records[refs[i]] then
            records[refs[i]] = true
            record_refs[#record_refs + 1] = refs[i]
        end
    end
    results[a + 1] = top
end
for i = 1, #ARGV[n], width do
    local ref = string.sub(ARGV[n], i, i + width - 1)
    if not records[ref] then
        records[ref] = true
        record_refs[#record_refs + 1] = ref
    end
end
local found, missing = {}, {}
for i, record in ipairs(chunked('HMGET', KEYS[1], record_refs)) do
    if record then
        found[#found + 1] = record_refs[i]
        found[#found + 1] = record
    else
        missing[#missing + 1] = record_refs[i]
    end
end
for i, record in ipairs(chunked('HMGET', KEYS[2], missing)) do
    if record then
        found[#found + 1] = missing[i]
        found[#found + 1] = record
    end
end
results[1] = found
return results
"""
)
"""KEYS: the story records of this period and of the last, then index hashes; ARGV: how many
candidates per article, the width of a story reference, how many articles, then for each
article how many index hashes it reads, their positions in KEYS and its lookup fields (4 bytes
each, concatenated); last, the references whose records are wanted too (concatenated).
Returns the records found (reference, record, ...), then for each article the
references found in the most of its index entries, most first. Each index hash and each
record hash is read once for the whole batch."""

HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""
"""KEYS: a hash; ARGV: field, value. Sets the field only on a hash that exists."""

SAVE_STORIES = (
    _STORY_HELPERS
    + """
local expire_at, ttl, width, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local records, slices, n = tonumber(ARGV[5]), tonumber(ARGV[6]), 7
if records > 0 then
    local fields, refs = {}, {}
    for i = n, n + 2 * records - 1, 2 do
        fields[#fields + 1] = ARGV[i]
        fields[#fields + 1] = ARGV[i + 1]
        refs[#refs + 1] = ARGV[i]
    end
    chunked('HSET', KEYS[1], fields)
    chunked('HDEL', KEYS[2], refs)
    redis.call('EXPIREAT', KEYS[1], expire_at)
    n = n + 2 * records
end
for k = 3, 2 + slices do
    local added, order = {}, {}
    for i = 1, #ARGV[n], 4 + width do
        local field, ref = string.sub(ARGV[n], i, i + 3), string.sub(ARGV[n], i + 4, i + 3 + width)
        if not added[field] then
            added[field] = {}
            order[#order + 1] = field
        end
        table.insert(added[field], ref)
    end
    n = n + 1
    local fields = {}
    for i, held in ipairs(chunked('HMGET', KEYS[k], order)) do
        held = held or ''
        for _, ref in ipairs(added[order[i]]) do
            local at = position(held, ref, width)
            if at then held = string.sub(held, 1, at - 1) .. string.sub(held, at + width) end
            held = held .. ref
        end
        if #held > cap then held = string.sub(held, -cap) end
        fields[#fields + 1] = order[i]
        fields[#fields + 1] = held
    end
    chunked('HSET', KEYS[k], fields)
    redis.call('EXPIRE', KEYS[k], ttl)
end
if #KEYS > 2 + slices then
    local signatures = redis.call('MGET', unpack(KEYS, 3 + slices))
    for k = 3 + slices, #KEYS do
        local signature = signatures[k - 2 - slices]
        if signature then
            local first = string.find(signature, '|', 1, true)
            local second = string.find(signature, '|', first + 1, true)
            local renamed = string.sub(signature, 1, first) .. ARGV[n] .. string.sub(signature, second)
            redis.call('SET', KEYS[k], renamed, 'KEEPTTL')
        end
        n = n + 1
    end
end
"""
)
"""KEYS: the story records of this period and of the last, the index hashes written, then the
signatures of articles whose story is not their own cluster; ARGV: when this period's records
expire (Unix time), seconds an index hash lives, the width of a story reference, the most
bytes an index entry keeps, how many records and index hashes follow; then the records
(reference, record), moved to this period; for each index hash its entries (4-byte field and
reference, concatenated), each added at the end (as the latest) and the oldest dropped past
the limit; then the story ids for the signatures (later copies read their story there).
Every hash is read and written once for the whole batch, the signatures read at once."""
