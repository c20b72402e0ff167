/**
 * Lua scripts of the redis adapter. A stored value is `[16 hex digits of version][frame]`
 * (frame: see `encodeFramed` in ../common.ts), so a script reads a version with
 * `GETRANGE key 0 15` without copying the value. Versions come from one counter per version
 * scope (the tenant prefix, see `versionScope`), so a key's version grows across delete and
 * re-create and one tenant's writes never move another's versions. A scope's counter starts
 * above the store-wide counter of earlier releases (the `legacy` key), so versions issued before
 * per-scope counting are never issued again. Scripts run atomically, which is what makes
 * compare-and-set and increment safe against every other client.
 */

/** `nextVersion(counter, legacy, n)`: spend n versions of a scope; → the last one. */
const NEXT_VERSION = `
local function nextVersion(counter, legacy, n)
  local v = redis.call('INCRBY', counter, n)
  if v == n then
    local base = tonumber(redis.call('GET', legacy) or '0') or 0
    if base > 0 then v = redis.call('INCRBY', counter, base) end
  end
  return v
end
`;

/**
 * Writes of `set` and `setMany`, applied in order (ADR 0023). KEYS: legacy counter, the m scope
 * counters the items use, then key1…keyN. ARGV: m; how many items use each counter (versions
 * are reserved with one INCRBY per counter); the predicted first version or ''; s, the number of
 * special items, and for each its index and spec 'counter,ttl ms or empty,expected version or
 * empty'; then per item its frame. An item without a spec — the common case — uses the first
 * counter, has no TTL and no condition, and its frame is plain MessagePack sent without its `m`
 * flag (added here). When every item is plain and the client predicted the first version, the
 * values come already stamped (16 hex digits, `m`, MessagePack): if the reservation starts there
 * they are written as they are, else they are stamped again with the versions reserved.
 * Runs of such plain items are written with one MSET; a special item first writes the run, so a
 * compare-and-set sees every earlier item. → per item its new version, or −1 − the actual version
 * for a failed compare-and-set (the version reserved for it stays unused); when every item is
 * plain, only the version before the first (the items get first+1…first+N).
 */
export const WRITE = `${NEXT_VERSION}
local m = tonumber(ARGV[1])
local nextv = {}
for c = 1, m do
  local count = tonumber(ARGV[1 + c])
  nextv[c] = nextVersion(KEYS[1 + c], KEYS[1], count) - count
end
local expected = ARGV[m + 2]
local s = tonumber(ARGV[m + 3])
local special = {}
for j = 1, s do special[tonumber(ARGV[m + 2 + 2 * j])] = ARGV[m + 3 + 2 * j] end
local base = m + 3 + 2 * s
local n = #KEYS - 1 - m
if m == 1 and s == 0 then
  local first = nextv[1]
  local run = {}
  if expected == '' then
    for i = 1, n do
      run[2 * i - 1] = KEYS[2 + i]
      run[2 * i] = string.format('%016xm', first + i) .. ARGV[base + i]
    end
  elseif tonumber(expected) == first + 1 then
    for i = 1, n do
      run[2 * i - 1] = KEYS[2 + i]
      run[2 * i] = ARGV[base + i]
    end
  else
    for i = 1, n do
      run[2 * i - 1] = KEYS[2 + i]
      run[2 * i] = string.format('%016x', first + i) .. string.sub(ARGV[base + i], 17)
    end
  end
  redis.call('MSET', unpack(run, 1, 2 * n))
  return first
end
local out = {}
local run = {}
local r = 0
for i = 1, n do
  local key = KEYS[1 + m + i]
  local frame = ARGV[base + i]
  local spec = special[i]
  if spec == nil then
    local v = nextv[1] + 1
    nextv[1] = v
    run[r + 1] = key
    run[r + 2] = string.format('%016xm', v) .. frame
    r = r + 2
    out[i] = v
  else
    if r > 0 then
      redis.call('MSET', unpack(run, 1, r))
      r = 0
    end
    local c, ttl, expected = string.match(spec, '^(%d+),(%d*),(%d*)$')
    c = tonumber(c)
    local actual = nil
    if expected ~= '' then
      local cur = redis.call('GETRANGE', key, 0, 15)
      actual = 0
      if cur ~= '' then actual = tonumber(cur, 16) end
      if actual == tonumber(expected) then actual = nil end
    end
    if actual then
      out[i] = -1 - actual
    else
      local v = nextv[c] + 1
      nextv[c] = v
      local data = string.format('%016x', v) .. frame
      if ttl ~= '' then
        redis.call('SET', key, data, 'PX', ttl)
      else
        redis.call('SET', key, data)
      end
      out[i] = v
    end
  end
end
if r > 0 then redis.call('MSET', unpack(run, 1, r)) end
return out
`;

/** KEYS: key. ARGV: expected version. → {1, deleted} | {0, actual}. */
export const DELETE_IF = `
local cur = redis.call('GETRANGE', KEYS[1], 0, 15)
local actual = 0
if cur ~= '' then actual = tonumber(cur, 16) end
if actual ~= tonumber(ARGV[1]) then return {0, actual} end
return {1, redis.call('DEL', KEYS[1])}
`;

/**
 * KEYS: key, scope counter, legacy counter. ARGV: by, ttl ms or '' (for a new key). Counters are stored with
 * the 'n' frame (ASCII decimal). → {1, version, 'result'} | {0, 'type'} | {0, 'range'}.
 */
export const INCR = `${NEXT_VERSION}
local cur = redis.call('GET', KEYS[1])
local n = 0
if cur then
  if string.sub(cur, 17, 17) ~= 'n' then return {0, 'type'} end
  n = tonumber(string.sub(cur, 18))
  if n == nil then return {0, 'type'} end
end
local r = n + tonumber(ARGV[1])
if r > 9007199254740991 or r < -9007199254740991 then return {0, 'range'} end
local v = nextVersion(KEYS[2], KEYS[3], 1)
local data = string.format('%016x', v) .. 'n' .. string.format('%d', r)
if cur then
  redis.call('SET', KEYS[1], data, 'KEEPTTL')
elseif ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], data, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], data)
end
return {1, v, string.format('%d', r)}
`;

/** KEYS: key1…keyN. → {value1, pttl1, …} (value false when absent). */
export const GET_WITH_TTL = `
local out = {}
for i = 1, #KEYS do
  out[2 * i - 1] = redis.call('GET', KEYS[i])
  out[2 * i] = redis.call('PTTL', KEYS[i])
end
return out
`;
