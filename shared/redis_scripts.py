"""Lua scripts that turn many Redis commands into one, where the client's per-command cost
would otherwise dominate (a hundred words or buckets per article)."""

from __future__ import annotations

CLAIM_IDENTITIES = """
local window, listed, owners, n = ARGV[1], ARGV[2], {}, 3
while n <= #ARGV do
    local mine, claims, count = ARGV[n], ARGV[n + 1], tonumber(ARGV[n + 2])
    local keys = {}
    for k = n + 3, n + 2 + count do
        redis.call('SET', ARGV[k], mine, 'NX', 'EX', window)
        owners[#owners + 1] = redis.call('GET', ARGV[k])
        keys[#keys + 1] = ARGV[k]
    end
    redis.call('SET', claims, table.concat(keys, ' '), 'EX', listed)
    n = n + 3 + count
end
return owners
"""
"""ARGV: the identity keys' lifetime (seconds), the lifetime of the lists of what each article
may own, then for each article the value that claims an identity
(`<id>|<delivery>|<content hash>|1`), the key listing what it may own, how many identity keys
follow, and those keys. Each key is claimed if free, and its owner (the claimant or an earlier
one) returned, every article's in turn: a batch claims in one call, atomically, where a
transaction of two commands per key cost the client more than the server."""

SET_EACH_FOR = """
for n = 2, #ARGV, 2 do
    redis.call('SET', ARGV[n], ARGV[n + 1], 'EX', ARGV[1])
end
return #ARGV / 2
"""
"""ARGV: seconds to live, then keys and their values: each key set to its value with that
lifetime, in one call (a command each cost the client more than the server)."""

NEAREST_IN_BUCKETS = """
local prefix, slices, expire_at, load = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local first_level, size = 4, 6
local tables = {}
for s = 5, 4 + slices do
    local name = prefix .. ARGV[s]
    local meta = redis.call('HMGET', name, 'level', 'split', 'entries')
    tables[#tables + 1] = {name = name, level = tonumber(meta[1]), split = tonumber(meta[2]) or 0,
                           entries = tonumber(meta[3]) or 0, names = {}}
end
local current = tables[1]

-- Every bucket exists from its making, with a lifetime: an empty field marks it.
local function make(name)
    redis.call('HSET', name, '', '')
    redis.call('EXPIREAT', name, expire_at)
end
if not current.level then
    current.level = first_level
    for b = 0, 2 ^ first_level - 1 do make(current.name .. ':' .. b) end
end
-- The numbers of buckets below and above the split pointer, kept as the level changes.
for _, t in ipairs(tables) do
    if t.level then t.below, t.above = 2 ^ t.level, 2 ^ (t.level + 1) end
end

local function place(field)
    local b1, b2, b3 = string.byte(field, 2, 4)
    return (b1 * 256 + b2) * 256 + b3
end

-- Linear hashing: the buckets below the split pointer have been split in two already. A
-- bucket's name is made once per call.
local function bucket(t, at)
    local where = at % t.below
    if where < t.split then where = at % t.above end
    local name = t.names[where]
    if not name then
        name = t.name .. ':' .. where
        t.names[where] = name
    end
    return name
end

local function split(t)
    local from, to = t.name .. ':' .. t.split, t.name .. ':' .. (t.split + t.below)
    make(to)
    local held, moved, names = redis.call('HGETALL', from), {}, {}
    for i = 1, #held, 2 do
        if held[i] ~= '' and place(held[i]) % t.above ~= t.split then
            moved[#moved + 1], moved[#moved + 2], names[#names + 1] = held[i], held[i + 1], held[i]
        end
    end
    if #names > 0 then
        redis.call('HSET', to, unpack(moved))
        redis.call('HDEL', from, unpack(names))
    end
    t.split = t.split + 1
    if t.split == t.below then t.level, t.split, t.below, t.above = t.level + 1, 0, t.above, 2 * t.above end
end

local function holds(refs, ref)
    for at = 1, #refs, size do
        if string.sub(refs, at, at + size - 1) == ref then return true end
    end
    return false
end

local found, n, band_size = {}, 5 + slices, 6
while n <= #ARGV do
    local ref, count, bands, refs = ARGV[n], tonumber(ARGV[n + 1]), ARGV[n + 2], {}
    for b = 1, count do
        local field, mine, mine_in = string.sub(bands, (b - 1) * band_size + 1, b * band_size), nil, nil
        local at = place(field)
        for s, t in ipairs(tables) do
            if t.level then
                local name = bucket(t, at)
                local held = redis.call('HGET', name, field)
                if held then refs[#refs + 1] = held end
                if s == 1 then mine, mine_in = held, name end
            end
        end
        -- the current table is not split between its read and this write
        if not mine then
            redis.call('HSET', mine_in, field, ref)
            current.entries = current.entries + 1
            if current.entries > load * (current.below + current.split) then split(current) end
        elseif not holds(mine, ref) then
            redis.call('HSET', mine_in, field, mine .. ref)
        end
    end
    found[#found + 1] = table.concat(refs)
    n = n + 3
end
redis.call('HSET', current.name, 'level', current.level, 'split', current.split, 'entries', current.entries)
redis.call('EXPIREAT', current.name, expire_at)
return found
"""
"""ARGV: the bucket tables' prefix, how many time slices are read, when the current slice's keys
expire (Unix time), the entries a bucket holds on average at most, the slices (the current one
first), then for each article its 6-byte reference, how many bands it has, and its bands (6
bytes each: the band, then its hash) written one after another in one argument. For each article in turn, the references its bands held in
the slices read (earlier articles of the call included, concatenated), then it is filed in the
current slice: a batch is filed and looked up in one call.

A slice is a table `<prefix><slice>` (its level, split pointer and entries) of bucket hashes
`<prefix><slice>:<number>` that grows by linear hashing: one bucket splits in two whenever the
average passes `load`, so buckets stay small (compactly encoded) and their number follows the
articles, from a few to millions. Every bucket is made with its lifetime, so filing an article
sets none."""

# Helpers of the story scripts: commands over any number of arguments (Lua's unpack has a
# limit), many fields of one hash read at once, and whether a concatenation of fixed-width
# references holds one at a boundary.
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
-- A hash's values of `fields`, in order (false where absent). A small hash is stored as one
-- packed list that each field's look-up scans from its start: when many fields are wanted
-- from one, it is read whole, once (for a few, the scans cost less than a whole reading).
local function values_of(key, fields)
    local encoding = redis.call('OBJECT', 'ENCODING', key)
    if #fields < 16 or (encoding ~= 'listpack' and encoding ~= 'ziplist') then
        return chunked('HMGET', key, fields)
    end
    local all, held, values = redis.call('HGETALL', key), {}, {}
    for i = 1, #all, 2 do held[all[i]] = all[i + 1] end
    for i, field in ipairs(fields) do values[i] = held[field] or false end
    return values
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
    local values, found = values_of(KEYS[k], wanted_here.list), {}
    for i, field in ipairs(wanted_here.list) do found[field] = values[i] end
    held[k] = found
end
local results, records, record_refs = {}, {}, {}
for a, plan in ipairs(plans) do
    local counts = {}
    for _, k in ipairs(plan[1]) do
        for _, field in ipairs(plan[2]) do
            local value = held[k][field]
            if value then
                for i = 1, #value, width do
                    local ref = string.sub(value, i, i + width - 1)
                    counts[ref] = (counts[ref] or 0) + 1
                end
            end
        end
    end
    -- The most found first, ties by reference: the references are put in lists by count and
    -- only the lists reached are sorted (most references are found once, and never reached).
    local by_count, most = {}, 0
    for ref, count in pairs(counts) do
        local list = by_count[count]
        if list then list[#list + 1] = ref else by_count[count] = {ref} end
        if count > most then most = count end
    end
    local top, taken = {}, 0
    for count = most, 1, -1 do
        local list = by_count[count]
        if list then
            table.sort(list)
            for _, ref in ipairs(list) do
                if taken == wanted then break end
                taken = taken + 1
                top[taken] = ref
                if not records[ref] then
                    records[ref] = true
                    record_refs[#record_refs + 1] = ref
                end
            end
            if taken == wanted then break end
        end
    end
    results[a + 1] = table.concat(top)
end
for i = 1, #ARGV[n], width do
    local ref = string.sub(ARGV[n], i, i + width - 1)
    if not records[ref] then
        records[ref] = true
        record_refs[#record_refs + 1] = ref
    end
end
local found, found_refs, missing = {''}, {}, {}
for i, record in ipairs(chunked('HMGET', KEYS[1], record_refs)) do
    if record then
        found_refs[#found_refs + 1] = record_refs[i]
        found[#found + 1] = record
    else
        missing[#missing + 1] = record_refs[i]
    end
end
for i, record in ipairs(chunked('HMGET', KEYS[2], missing)) do
    if record then
        found_refs[#found_refs + 1] = missing[i]
        found[#found + 1] = record
    end
end
found[1] = table.concat(found_refs)
results[1] = found
return results
"""
)
"""KEYS: the story records of this period and of the last, then index hashes; ARGV: how many
candidates per article, the width of a story reference, how many articles, then for each
article how many index hashes it reads, their positions in KEYS and its lookup fields (4 bytes
each, concatenated); last, the references whose records are wanted too (concatenated).
Returns the records found (their references concatenated, then the records in that order),
then for each article the references found in the most of its index entries, most first
(concatenated). Each index hash and each record hash is read once for the whole batch; few
values are returned, as each costs the client more to read than its bytes."""

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
    for i, held in ipairs(values_of(KEYS[k], order)) do
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

COUNT_PARAGRAPHS = """
local now, span, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local capacity, kept, width = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local sources, touched, results, n = {}, {}, {}, 7

local function value(set, at)
    local b1, b2, b3, b4 = string.byte(set, at, at + 3)
    return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end

-- The set with the fingerprint among its `kept` smallest (compared as numbers, not by the
-- server's collation), or nil if that changes nothing.
local function insert(set, fingerprint)
    local mine = value(fingerprint, 1)
    for at = 1, #set, 4 do
        local held = value(set, at)
        if held == mine then return nil end
        if mine < held then
            return string.sub(string.sub(set, 1, at - 1) .. fingerprint .. string.sub(set, at), 1, 4 * kept)
        end
    end
    if #set < 4 * kept then return set .. fingerprint end
    return nil
end

local function count(set)
    if #set < 4 * kept then return #set / 4 end
    return math.max(kept, math.floor((kept - 1) * 4294967296 / (value(set, 4 * kept - 3) + 1)))
end

while n <= #ARGV do
    local prefix, fingerprint, paragraphs, digests = ARGV[n], ARGV[n + 1], tonumber(ARGV[n + 2]), ARGV[n + 3]
    local source = sources[prefix]
    if not source then
        local meta = redis.call('HMGET', prefix, 'generation', 'since', 'size')
        source = {generation = tonumber(meta[1]) or 0, since = tonumber(meta[2]) or now, size = tonumber(meta[3]) or 0}
        sources[prefix] = source
    end
    local learning = fingerprint ~= ''
    if learning and (source.size >= capacity or now - source.since >= span) then
        for shard = 0, 15 do
            redis.call('DEL', prefix .. ':' .. (source.generation - 1) .. ':' .. string.format('%x', shard))
        end
        source.generation, source.since, source.size = source.generation + 1, now, 0
    end
    local counts = {}
    for p = 1, paragraphs do
        local field = string.sub(digests, (p - 1) * width + 1, p * width)
        local shard = string.sub(field, 1, 1)
        local current = prefix .. ':' .. source.generation .. ':' .. shard
        local set = redis.call('HGET', current, field)
        local fresh = not set
        if fresh then set = redis.call('HGET', prefix .. ':' .. (source.generation - 1) .. ':' .. shard, field) or '' end
        if learning then
            local merged = insert(set, fingerprint)
            if merged or fresh then
                set = merged or set
                redis.call('HSET', current, field, set)
                touched[current] = true
                if fresh then source.size = source.size + 1 end
            end
            source.learned = true
        end
        counts[#counts + 1] = count(set)
    end
    results[#results + 1] = table.concat(counts, ',')
    n = n + 4
end
for prefix, source in pairs(sources) do
    if source.learned then
        redis.call('HSET', prefix, 'generation', source.generation, 'since', source.since, 'size', source.size)
        redis.call('EXPIRE', prefix, ttl)
    end
end
for key in pairs(touched) do redis.call('EXPIRE', key, ttl) end
return results
"""
"""ARGV: the time, the seconds a generation lasts at most, seconds to live, the paragraphs a
generation holds at most, how many article fingerprints a paragraph keeps, the width of a
paragraph's digest (12 hex digits); then for each article its source's key, its 4-byte
fingerprint ('' to read without counting), how many paragraphs it has, and their digests
written one after another (one argument, not one each: the client's cost is per argument).
For each article, how many distinct articles of its source printed each paragraph, itself
included, as one string of numbers separated by commas (one reply each cost the client more).

A source's paragraphs are held in two generations, `<source key>:<generation>:<shard>`, each
split in 16 small hashes: a paragraph maps to the smallest fingerprints of the articles that
printed it, so an article counted again (a retried batch) changes nothing, and counts are exact
up to that many and estimated above. A paragraph read again moves to the current generation; a
new generation starts when the current one is full or old, and the one before it is dropped
with what was not read again, so memory per source is bounded."""
