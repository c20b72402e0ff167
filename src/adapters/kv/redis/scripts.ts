/**
 * Lua scripts of the redis adapter. A stored value is `[16 hex digits of version][frame]`
 * (frame: see `encodeFramed` in ../common.ts), so a script reads a version with
 * `GETRANGE key 0 15` without copying the value. Versions are per key (ADR 0025): a write gives
 * the key its latest version + 1. Redis drops a deleted or expired key with its version, so the
 * version outlives it in the key's *floor*, `{floor prefix}{key}` (its name holds a NUL, which no
 * Kura key may contain): written by a delete (expiring after the tombstone retention) and by
 * every write that gives the key a TTL (expiring the retention after the key does). A key
 * without a value counts on from its floor. Scripts run atomically, which is what makes
 * compare-and-set and increment safe against every other client.
 *
 * While a store written by an earlier release upgrades (one retention period from the first
 * start of this one), a key with neither value nor floor counts on from its scope's version
 * counter of that release (`legacy`): it may have existed then, with any version up to it.
 * The floor keys are built here from the key (`{floor prefix}` .. key without the key prefix):
 * the adapter serves one Redis, not a cluster.
 */

/**
 * What every writing script shares. `lastVersion(key, c)`: the latest version of `key` — its
 * value's, its floor's, or during an upgrade its scope counter's (`c`: the index of the scope
 * among the counters passed) — 0 for none. Expects `fprefix`, `plen`, `nlegacy` (index of the
 * store-wide legacy counter in KEYS, 0 = no upgrade) set by the script.
 */
const LAST_VERSION = `
local legacyFloors = {}
local function legacy(c)
  if nlegacy == 0 then return 0 end
  local f = legacyFloors[c]
  if f == nil then
    f = tonumber(redis.call('GET', KEYS[nlegacy + c]) or redis.call('GET', KEYS[nlegacy]) or '0') or 0
    legacyFloors[c] = f
  end
  return f
end
local function floorKey(key)
  return fprefix .. string.sub(key, plen + 1)
end
local function lastVersion(key, c)
  local cur = redis.call('GETRANGE', key, 0, 15)
  if cur ~= '' then return tonumber(cur, 16) end
  local f = redis.call('GET', floorKey(key))
  if f then return tonumber(f) end
  return legacy(c)
end
`;

/**
 * Writes of `set` and `setMany`, applied in order (ADR 0023). KEYS: key1…keyN, then during an
 * upgrade the store-wide legacy counter and the m scope counters the items use. ARGV: floor
 * prefix, key prefix length in bytes, tombstone retention ms, m (0: no upgrade), s, the number
 * of special items, and for each its index and spec 'counter,ttl ms or empty,expected version
 * or empty'; then per item its frame. An item without a spec — the common case — uses the first
 * counter, has no TTL and no condition, and its frame is plain MessagePack sent without its `m`
 * flag (added here). Runs of such plain items are written with one MSET; a special item first
 * writes the run. An item repeating an earlier item's key counts on from that item's version.
 * → per item its new version, or −1 − the actual version for a failed compare-and-set.
 */
export const WRITE = `
local n = #KEYS
local fprefix = ARGV[1]
local plen = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local m = tonumber(ARGV[4])
local nlegacy = 0
if m > 0 then
  n = n - 1 - m
  nlegacy = n + 1
end
${LAST_VERSION}
local s = tonumber(ARGV[5])
local special = {}
for j = 1, s do special[tonumber(ARGV[4 + 2 * j])] = ARGV[5 + 2 * j] end
local base = 5 + 2 * s
local seen = {}
local out = {}
local run = {}
local r = 0
for i = 1, n do
  local key = KEYS[i]
  local frame = ARGV[base + i]
  local spec = special[i]
  if spec == nil then
    local v = (seen[key] or lastVersion(key, 1)) + 1
    seen[key] = v
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
    local last = seen[key]
    local actual = last
    if last == nil then
      local cur = redis.call('GETRANGE', key, 0, 15)
      if cur ~= '' then
        actual = tonumber(cur, 16)
        last = actual
      else
        actual = 0
      end
    end
    if expected ~= '' and actual ~= tonumber(expected) then
      out[i] = -1 - actual
    else
      if last == nil then
        local f = redis.call('GET', floorKey(key))
        if f then last = tonumber(f) else last = legacy(c) end
      end
      local v = last + 1
      seen[key] = v
      local data = string.format('%016x', v) .. frame
      if ttl ~= '' then
        redis.call('SET', key, data, 'PX', ttl)
        redis.call('SET', floorKey(key), string.format('%d', v), 'PX', tonumber(ttl) + retention)
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

/**
 * KEYS: key. ARGV: floor prefix, key prefix length, tombstone retention ms, expected version or
 * ''. The key's version is kept in its floor for the retention. → {1, deleted} | {0, actual}.
 */
export const DELETE = `
local cur = redis.call('GETRANGE', KEYS[1], 0, 15)
local actual = 0
if cur ~= '' then actual = tonumber(cur, 16) end
if ARGV[4] ~= '' and actual ~= tonumber(ARGV[4]) then return {0, actual} end
if actual == 0 then return {1, 0} end
redis.call('DEL', KEYS[1])
redis.call('SET', ARGV[1] .. string.sub(KEYS[1], tonumber(ARGV[2]) + 1), string.format('%d', actual), 'PX', ARGV[3])
return {1, 1}
`;

/**
 * KEYS: key, then during an upgrade the store-wide legacy counter and the key's scope counter.
 * ARGV: floor prefix, key prefix length, tombstone retention ms, by, ttl ms or '' (for a new
 * key). Counters are stored with the 'n' frame (ASCII decimal).
 * → {1, version, 'result'} | {0, 'type'} | {0, 'range'}.
 */
export const INCR = `
local fprefix = ARGV[1]
local plen = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local nlegacy = 0
if #KEYS > 1 then nlegacy = 2 end
${LAST_VERSION}
local key = KEYS[1]
local cur = redis.call('GET', key)
local n = 0
local last
if cur then
  if string.sub(cur, 17, 17) ~= 'n' then return {0, 'type'} end
  n = tonumber(string.sub(cur, 18))
  if n == nil then return {0, 'type'} end
  last = tonumber(string.sub(cur, 1, 16), 16)
end
local r = n + tonumber(ARGV[4])
if r > 9007199254740991 or r < -9007199254740991 then return {0, 'range'} end
if last == nil then
  local f = redis.call('GET', floorKey(key))
  if f then last = tonumber(f) else last = legacy(1) end
end
local v = last + 1
local data = string.format('%016x', v) .. 'n' .. string.format('%d', r)
if cur then
  redis.call('SET', key, data, 'KEEPTTL')
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then redis.call('SET', floorKey(key), string.format('%d', v), 'PX', ttl + retention) end
elseif ARGV[5] ~= '' then
  redis.call('SET', key, data, 'PX', ARGV[5])
  redis.call('SET', floorKey(key), string.format('%d', v), 'PX', tonumber(ARGV[5]) + retention)
else
  redis.call('SET', key, data)
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

/**
 * `takeToken`: one token from a bucket stored as a hash {tokens, at} (at: ms by Redis's clock,
 * so every node refills alike). KEYS: the bucket. ARGV: tokens per second, burst.
 * → {1, 0} when taken, else {0, ms until a token is back}. The bucket expires once it would be
 * full again, so an idle tenant leaves nothing behind.
 */
export const TAKE_TOKEN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000) end
local taken = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = math.max(1, math.ceil((1 - tokens) * 1000 / rate))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {taken, wait}
`;
