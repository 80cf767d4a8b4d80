/**
 * Lua for approvals. An approval is a hash; the approvals of one binding (session, tool, argument
 * hash; identity, upstream name and tenant are compared inside) share a hash tag and an index, so
 * finding-or-filing is one script on one Cluster slot and two replicas can never file two approvals for the same held call. Decisions publish the id, which
 * wakes the waiting call on whichever replica holds it.
 */

const PRELUDE = `
local function fmt(x) return string.format('%.17g', x) end
local function live(s) return s == 'pending' or s == 'approved' end
`;

/**
 * KEYS: index. ARGV: now, session, identity, tool, argsHash, preview, rule, timeoutMs, newId, keyPrefix,
 * keepMs, upstreamName ('' for none: an approval filed before upstream names has no such field),
 * tenant ('' for none: a stand-alone gateway's, or one filed before tenants were recorded).
 */
const REQUEST = `${PRELUDE}
local now = tonumber(ARGV[1])
local best, bestState, bestCreated
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local k = ARGV[10] .. id
  local r = redis.call('HMGET', k, 'status', 'expires_at', 'session', 'tool', 'args_hash', 'created_at', 'identity', 'upstream_name', 'tenant')
  if not r[1] then
    redis.call('ZREM', KEYS[1], id)
  else
    local status = r[1]
    if live(status) and tonumber(r[2]) <= now then
      redis.call('HSET', k, 'status', 'expired', 'decided_at', ARGV[1])
      status = 'expired'
    end
    if live(status) and r[3] == ARGV[2] and r[7] == ARGV[3] and r[4] == ARGV[4] and r[5] == ARGV[5] and (r[8] or '') == ARGV[12] and (r[9] or '') == ARGV[13] then
      local created = tonumber(r[6])
      if not best or (status == 'approved' and bestState ~= 'approved') or (status == bestState and created < bestCreated) then
        best, bestState, bestCreated = id, status, created
      end
    end
  end
end
if best then return {bestState, best} end
local k = ARGV[10] .. ARGV[9]
redis.call('HSET', k, 'id', ARGV[9], 'created_at', ARGV[1], 'expires_at', fmt(now + tonumber(ARGV[8])), 'status', 'pending',
  'session', ARGV[2], 'identity', ARGV[3], 'tool', ARGV[4], 'args_hash', ARGV[5], 'args_preview', ARGV[6], 'rule', ARGV[7])
if ARGV[12] ~= '' then redis.call('HSET', k, 'upstream_name', ARGV[12]) end
if ARGV[13] ~= '' then redis.call('HSET', k, 'tenant', ARGV[13]) end
redis.call('PEXPIRE', k, math.floor(tonumber(ARGV[8]) + tonumber(ARGV[11])))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[9])
redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[8]) + tonumber(ARGV[11])))
return {'new', ARGV[9]}
`;

/** KEYS: approval. ARGV: now, decision, by, reason, hasReason (1/0), graceMs, channel, id, keepMs. */
const DECIDE = `${PRELUDE}
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local r = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
local status, exp = r[1], tonumber(r[2])
if live(status) and exp <= now then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'decided_at', ARGV[1])
  status = 'expired'
end
if status ~= 'pending' then return {'not_pending', status} end
if ARGV[2] == 'approved' then exp = math.max(exp, now + tonumber(ARGV[6])) end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decided_at', ARGV[1], 'decided_by', ARGV[3], 'expires_at', fmt(exp))
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'reason', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], math.floor(exp - now + tonumber(ARGV[9])))
redis.call('PUBLISH', ARGV[7], ARGV[8])
return {'ok'}
`;

/**
 * KEYS: approval. ARGV: now. -> its expiry when it was approved, not expired, and is now used; else
 * false (nil).
 */
const CONSUME = `
local r = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if r[1] == 'approved' and tonumber(r[2]) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'status', 'consumed')
  return r[2]
end
return false
`;

/** KEYS: approval. ARGV: now. A pending approval past its deadline becomes expired. */
const EXPIRE = `
local r = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if r[1] == 'pending' and tonumber(r[2]) <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'decided_at', ARGV[1])
  return 1
end
return 0
`;

/**
 * KEYS: approval. ARGV: now, reason, channel, id. A pending, or approved but unused, approval whose
 * call is gone expires now.
 */
const WITHDRAW = `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'approved' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'expired', 'decided_at', ARGV[1], 'reason', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;

export const APPROVAL_SCRIPTS = {
  apr_request: [1, REQUEST],
  apr_decide: [1, DECIDE],
  apr_consume: [1, CONSUME],
  apr_expire: [1, EXPIRE],
  apr_withdraw: [1, WITHDRAW],
} as const;
