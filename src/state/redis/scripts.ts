/**
 * Lua for the shared sliding-window counters. Every change to a counter happens inside one script,
 * so concurrent replicas never read-modify-write from Node. Each script touches the two keys of ONE
 * counter (same hash tag), so it runs on Redis Cluster as well.
 *
 * A counter is a sorted set of charges (member `<reservation>|<cost>`, `|c` appended once committed;
 * score = the time charged, ms) and a running sum. Time: ARGV `now` is the caller's clock when it is
 * >= 0 (tests inject one), otherwise Redis TIME, so that in production every replica measures windows
 * on the same clock whatever their own clocks say. A window of -1 never ends (the longest windows a
 * policy accepts do not fit in milliseconds). Numbers go back as %.17g strings: exact doubles, the
 * same arithmetic as the in-memory limiter (src/policy/rate-limiter.ts), whose behaviour these copy.
 */

export const PRELUDE = `
local function fmt(x) return string.format('%.17g', x) end
local function costOf(m) return tonumber(string.match(m, '^[^|]*|([^|]*)')) or 0 end
local function clock(a)
  local n = tonumber(a)
  if n >= 0 then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Drops charges at or before now - win and returns the sum of what is left. The sum counts only
-- charges in the set: with the set gone (expired, idle past its window) nothing is charged, whatever
-- a sum left behind says.
local function prune(z, s, now, win)
  if redis.call('EXISTS', z) == 0 then return 0 end
  local sum = tonumber(redis.call('GET', s) or '0')
  if win >= 0 then
    local cutoff = fmt(now - win)
    local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
    if #old > 0 then
      for _, m in ipairs(old) do sum = sum - costOf(m) end
      redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
    end
  end
  if sum < 1e-9 then sum = math.max(0, sum) end
  return sum
end
-- Housekeeping on Redis time only: with an injected clock, expiry in real time could drop a charge
-- that is still inside the caller's window.
local function keep(z, s, win, injected)
  if injected then return end
  if win < 0 or win > 1e15 then
    redis.call('PERSIST', z); redis.call('PERSIST', s)
  else
    local ttl = math.floor(win) + 1000
    redis.call('PEXPIRE', z, ttl); redis.call('PEXPIRE', s, ttl)
  end
end
`;

/** KEYS: zset, sum. ARGV: now, window, max, cost, member. -> {1, now} or {0, used, retryAfter(-1 = never), now} */
export const RESERVE = `${PRELUDE}
local now = clock(ARGV[1])
local win, max, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local sum = prune(KEYS[1], KEYS[2], now, win)
if sum + cost > max + 1e-9 then
  -- KEEPTTL, here and wherever the sum is rewritten: a plain SET drops the key's expiry, and a sum
  -- outliving its charges kept a limit at its maximum for good after one denial (found by review)
  redis.call('SET', KEYS[2], fmt(sum), 'KEEPTTL')
  local retry = -1
  if cost <= max then
    retry = win
    local s = sum
    local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
    for i = 1, #all, 2 do
      s = s - costOf(all[i])
      if s + cost <= max + 1e-9 then
        if win < 0 then retry = -1 else retry = math.max(1, tonumber(all[i + 1]) + win - now) end
        break
      end
    end
  end
  return {0, fmt(sum), fmt(retry), fmt(now)}
end
redis.call('ZADD', KEYS[1], fmt(now), ARGV[5])
redis.call('SET', KEYS[2], fmt(sum + cost))
keep(KEYS[1], KEYS[2], win, tonumber(ARGV[1]) >= 0)
return {1, fmt(now)}
`;

/** KEYS: zset, sum. ARGV: member, cost. Gives the charge back unless it was committed or has left the window. */
export const REFUND = `${PRELUDE}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  local sum = tonumber(redis.call('GET', KEYS[2]) or '0') - tonumber(ARGV[2])
  if sum < 1e-9 then sum = math.max(0, sum) end
  redis.call('SET', KEYS[2], fmt(sum), 'KEEPTTL')
  return 1
end
return 0
`;

/** KEYS: zset. ARGV: member. Renames the charge to its committed form, which no refund names. */
export const COMMIT = `
local t = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not t then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], t, ARGV[1] .. '|c')
return 1
`;

/** KEYS: zset, sum. ARGV: now, window. -> used within the window, as a string. */
export const USED = `${PRELUDE}
local sum = prune(KEYS[1], KEYS[2], clock(ARGV[1]), tonumber(ARGV[2]))
redis.call('SET', KEYS[2], fmt(sum), 'KEEPTTL')
return fmt(sum)
`;

/**
 * KEYS: zset, sum. ARGV: member (as it should be now), time, cost, window, injected (1/0).
 * Puts a charge back after Redis lost its data; adding one that is already there changes nothing.
 */
export const RESTORE = `${PRELUDE}
local plain = string.gsub(ARGV[1], '|c$', '')
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZSCORE', KEYS[1], plain) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('SET', KEYS[2], fmt(tonumber(redis.call('GET', KEYS[2]) or '0') + tonumber(ARGV[3])))
keep(KEYS[1], KEYS[2], tonumber(ARGV[4]), ARGV[5] == '1')
return 1
`;
