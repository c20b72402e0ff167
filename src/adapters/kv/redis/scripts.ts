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

/** KEYS: key, scope counter, legacy counter. ARGV: frame, ttl ms or '', expected version or ''. → {1, version} | {0, actual}. */
export const SET = `${NEXT_VERSION}
if ARGV[3] ~= '' then
  local cur = redis.call('GETRANGE', KEYS[1], 0, 15)
  local actual = 0
  if cur ~= '' then actual = tonumber(cur, 16) end
  if actual ~= tonumber(ARGV[3]) then return {0, actual} end
end
local v = nextVersion(KEYS[2], KEYS[3], 1)
local data = string.format('%016x', v) .. ARGV[1]
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], data, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], data)
end
return {1, v}
`;

/** The common case of SET: no TTL, no condition. KEYS: key, scope counter, legacy counter. ARGV: frame. → version. */
export const PUT = `${NEXT_VERSION}
local v = nextVersion(KEYS[2], KEYS[3], 1)
redis.call('SET', KEYS[1], string.format('%016x', v) .. ARGV[1])
return v
`;

/** KEYS: scope counter, legacy counter, key1…keyN (one scope). ARGV: ttl1, frame1, … → the version before the first (versions are first+1…first+N). */
export const SET_MANY = `${NEXT_VERSION}
local n = #KEYS - 2
local last = nextVersion(KEYS[1], KEYS[2], n)
local first = last - n
for i = 1, n do
  local data = string.format('%016x', first + i) .. ARGV[2 * i]
  local ttl = ARGV[2 * i - 1]
  if ttl ~= '' then
    redis.call('SET', KEYS[i + 2], data, 'PX', ttl)
  else
    redis.call('SET', KEYS[i + 2], data)
  end
end
return first
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
