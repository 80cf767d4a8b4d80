import { PRELUDE } from './scripts.js';

/**
 * Lua for the live session handles of one identity: a sorted set (member = handle, score = its last
 * admitted use, ms) under the identity's own hash tag, so one script sees and changes all of the
 * identity's handles at once and two replicas can never both take the last slot. Time as in the
 * counter scripts: ARGV now >= 0 is the caller's clock (tests), otherwise Redis TIME.
 */

/**
 * KEYS: zset. ARGV: now, ttl (ms, -1 = never ends), max, handle, injected (1/0).
 * -> {1, fresh (1/0), live} or {0, live, retryAfter}
 */
export const HANDLE_TOUCH = `${PRELUDE}
local now = clock(ARGV[1])
local ttl, max, handle = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if ttl >= 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now - ttl)) end
local live = redis.call('ZCARD', KEYS[1])
local held = redis.call('ZSCORE', KEYS[1], handle)
local fresh = 0
if not held then
  if live >= max then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local retry = -1
    if ttl >= 0 then retry = math.max(1, tonumber(oldest[2]) + ttl - now) end
    return {0, live, fmt(retry)}
  end
  fresh = 1
  live = live + 1
end
redis.call('ZADD', KEYS[1], fmt(now), handle)
-- Housekeeping on Redis time only (see keep() in scripts.ts): the set outlives its newest handle by a second.
if ARGV[5] ~= '1' then
  if ttl < 0 then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], math.floor(ttl) + 1000) end
end
return {1, fresh, live}
`;

/** KEYS: zset. ARGV: now, ttl. -> the live handles, oldest use first. */
export const HANDLE_LIVE = `${PRELUDE}
local now = clock(ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl < 0 then return redis.call('ZRANGE', KEYS[1], 0, -1) end
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now - ttl), '+inf')
`;
