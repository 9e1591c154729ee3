/**
 * The Lua scripts of the Redis registry. Each runs atomically in Redis, so a
 * check and the update it decides (route: reuse / uid-taken / pick a live
 * sharer with room / count the join / record the route) cannot race with
 * another node doing the same.
 *
 * Key layout, every key under the prefix P and carrying an expiry:
 *
 * | key              | type   | content                                            | expiry                              |
 * | ---------------- | ------ | -------------------------------------------------- | ----------------------------------- |
 * | P s:<name>       | hash   | sharer socket -> `expiresAt|maxJoins|joins`        | latest share expiry + grace         |
 * | P r:<name>       | hash   | joinerUID -> `<len>:<joiner><sharer>`              | its sharer's expiry + grace         |
 * | P node:<id>      | string | `1`: node <id> is alive and has registrations      | node timeout, renewed by heartbeats |
 * | P node:<id>:s    | set    | `<len>:<name><sharer>`: shares node <id> made      | renewed by heartbeats (reap window) |
 * | P node:<id>:r    | set    | `<len>:<name><len>:<uid><joiner>`: its routes      | renewed by heartbeats (reap window) |
 * | P nodes          | set    | ids of nodes that have registrations               | renewed by heartbeats               |
 *
 * A node with nothing registered keeps no key at all: its heartbeat removes
 * its mark, and the first registration puts it back. So once every client
 * has left, nothing of the project's remains in Redis.
 *
 * Lengths are byte lengths (Lua's `#`), so any name or uid, colons and all,
 * decodes back unambiguously. Keys are built inside the scripts, so this
 * layout suits one Redis primary (with replicas or Sentinel), not a sharded
 * Redis Cluster.
 * @module
 */

/** Shared helpers: ARGV[1] is always the key prefix. */
const PRELUDE = `
local P = ARGV[1]
local function enc(s) return #s .. ':' .. s end
local function dec(s, pos)
  local colon = string.find(s, ':', pos, true)
  local n = tonumber(string.sub(s, pos, colon - 1))
  return string.sub(s, colon + 1, colon + n), colon + n + 1
end
local function extend(key, at)
  if redis.call('PEXPIRETIME', key) < at then redis.call('PEXPIREAT', key, at) end
end
local function parse(rec)
  local e, m, j = string.match(rec, '^([^|]*)|([^|]*)|(%d+)$')
  return e, m, tonumber(j)
end
-- Removes a route if it still belongs to this joiner, and the node's record of it.
local function unroute(name, uid, joiner, node)
  local rkey = P .. 'r:' .. name
  local cur = redis.call('HGET', rkey, uid)
  if cur and dec(cur, 1) == joiner then redis.call('HDEL', rkey, uid) end
  redis.call('SREM', P .. 'node:' .. node .. ':r', enc(name) .. enc(uid) .. joiner)
end
-- Marks a node alive as it registers something; says whether it already was.
local function touch(node, timeout, regTtl)
  local me = P .. 'node:' .. node
  local existed = redis.call('EXISTS', me)
  redis.call('SET', me, '1', 'PX', timeout)
  redis.call('SADD', P .. 'nodes', node)
  redis.call('PEXPIRE', P .. 'nodes', regTtl)
  return existed
end
`;

/**
 * Registers or renews a share, keeping its join count (or raising it to
 * ARGV[9], for a restore). Returns whether the node's mark was there.
 * ARGV: prefix, name, sharer, expiresAt, maxJoins (-1: none), node, regTtl, grace, minJoins, timeout
 */
const ADD_SHARE = `${PRELUDE}
local key = P .. 's:' .. ARGV[2]
local joins = tonumber(ARGV[9])
local cur = redis.call('HGET', key, ARGV[3])
if cur then
  local _, _, j = parse(cur)
  if j and j > joins then joins = j end
end
redis.call('HSET', key, ARGV[3], ARGV[4] .. '|' .. ARGV[5] .. '|' .. joins)
extend(key, tonumber(ARGV[4]) + tonumber(ARGV[8]))
local reg = P .. 'node:' .. ARGV[6] .. ':s'
redis.call('SADD', reg, enc(ARGV[2]) .. ARGV[3])
redis.call('PEXPIRE', reg, ARGV[7])
return touch(ARGV[6], ARGV[10], ARGV[7])
`;

/** ARGV: prefix, name, sharer, node */
const REMOVE_SHARE = `${PRELUDE}
redis.call('HDEL', P .. 's:' .. ARGV[2], ARGV[3])
redis.call('SREM', P .. 'node:' .. ARGV[4] .. ':s', enc(ARGV[2]) .. ARGV[3])
return 1
`;

/**
 * Routes joiners, several per run: a node sends the routes of one
 * event-loop turn together, so a busy node pays one command, one reply and
 * one script run for many launches instead of one each. Each route, in
 * order, as if run alone: reuse the joiner's own route (uid-taken if
 * another joiner holds the uid), or pick a live sharer with room at random,
 * count the join and record the route. When a route is made or reused, also
 * removes the joiner's route given as its eviction, as REMOVE_ROUTE would:
 * the core's route cap then costs no command of its own.
 * Returns one string, a line per route: `1<fresh><mark was there><sharer>`
 * (fresh and mark as 0 or 1) or `0<code>`; socket ids never hold a newline.
 * One string decodes at a fraction of the cost of nested replies.
 * ARGV: prefix, node, regTtl, grace, timeout, and the routes in one string:
 * per route 7 fields, each `<byte length>:<text>`: name, uid, joiner, now,
 * random in [0, 2^32), evict name, evict uid (both empty for none; share
 * names are never empty). One argument instead of 7 per route spares the
 * node a RESP string per value.
 */
const ROUTE = `${PRELUDE}
local node, regTtl, grace, timeout = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local mark
local function route(name, uid, joiner, now, random, evictName, evictUid)
  local function evict()
    if evictName ~= '' and (evictName ~= name or evictUid ~= uid) then unroute(evictName, evictUid, joiner, node) end
  end
  local rkey = P .. 'r:' .. name
  local cur = redis.call('HGET', rkey, uid)
  if cur then
    local owner, rest = dec(cur, 1)
    if owner == joiner then
      evict()
      return '101' .. string.sub(cur, rest)
    end
    return '0uid-taken'
  end
  local skey = P .. 's:' .. name
  local all = redis.call('HGETALL', skey)
  local open, live, alive = {}, false, {}
  for i = 1, #all, 2 do
    local e, m, j = parse(all[i + 1])
    if e and tonumber(e) > now then
      -- A sharer on a node whose heartbeat lapsed is gone, even before the reap.
      local at = string.match(all[i], '^([^#]+)#')
      local up = true
      if at then
        up = alive[at]
        if up == nil then
          up = redis.call('EXISTS', P .. 'node:' .. at) == 1
          alive[at] = up
        end
      end
      if up then
        live = true
        local max = tonumber(m)
        if max < 0 or j < max then open[#open + 1] = i end
      end
    end
  end
  if #open == 0 then
    if live then return '0share-full' end
    return '0no-sharer'
  end
  local i = open[math.min(#open, math.floor(random / 4294967296 * #open) + 1)]
  local sharer = all[i]
  local e, m, j = parse(all[i + 1])
  redis.call('HSET', skey, sharer, e .. '|' .. m .. '|' .. (j + 1))
  redis.call('HSET', rkey, uid, enc(joiner) .. sharer)
  extend(rkey, tonumber(e) + tonumber(grace))
  local reg = P .. 'node:' .. node .. ':r'
  redis.call('SADD', reg, enc(name) .. enc(uid) .. joiner)
  redis.call('PEXPIRE', reg, regTtl)
  evict()
  -- The node's mark, once per run: later routes of the run find it set.
  if mark == nil then mark = touch(node, timeout, regTtl) end
  return '11' .. mark .. sharer
end
local replies = {}
local batch, at = ARGV[6], 1
while at <= #batch do
  local name, uid, joiner, now, random, evictName, evictUid
  name, at = dec(batch, at)
  uid, at = dec(batch, at)
  joiner, at = dec(batch, at)
  now, at = dec(batch, at)
  random, at = dec(batch, at)
  evictName, at = dec(batch, at)
  evictUid, at = dec(batch, at)
  replies[#replies + 1] = route(name, uid, joiner, tonumber(now), tonumber(random), evictName, evictUid)
end
return table.concat(replies, '\\n')
`;

/**
 * Puts back a route after the registry lost it, unless another joiner took
 * the uid meanwhile. Returns 1 when the route is (again) this joiner's.
 * ARGV: prefix, name, uid, joiner, sharer, expireAt, node, regTtl, timeout
 */
const RESTORE_ROUTE = `${PRELUDE}
local rkey = P .. 'r:' .. ARGV[2]
local cur = redis.call('HGET', rkey, ARGV[3])
if cur and dec(cur, 1) ~= ARGV[4] then return 0 end
if not cur then redis.call('HSET', rkey, ARGV[3], enc(ARGV[4]) .. ARGV[5]) end
extend(rkey, tonumber(ARGV[6]))
local reg = P .. 'node:' .. ARGV[7] .. ':r'
redis.call('SADD', reg, enc(ARGV[2]) .. enc(ARGV[3]) .. ARGV[4])
redis.call('PEXPIRE', reg, ARGV[8])
touch(ARGV[7], ARGV[9], ARGV[8])
return 1
`;

/** ARGV: prefix, name, uid, joiner, node */
const REMOVE_ROUTE = `${PRELUDE}
unroute(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
`;

/**
 * A heartbeat: keeps this node's mark while it has registrations (drops it
 * when it has none) and lists the nodes whose mark lapsed.
 * Returns {mark was there, has registrations, {dead ids}}.
 * ARGV: prefix, node, timeout, regTtl
 */
const BEAT = `${PRELUDE}
local me = P .. 'node:' .. ARGV[2]
local nodes = P .. 'nodes'
local has = redis.call('EXISTS', me .. ':s', me .. ':r')
local existed = redis.call('EXISTS', me)
if has > 0 then
  touch(ARGV[2], ARGV[3], ARGV[4])
  redis.call('PEXPIRE', me .. ':s', ARGV[4])
  redis.call('PEXPIRE', me .. ':r', ARGV[4])
else
  redis.call('DEL', me)
  redis.call('SREM', nodes, ARGV[2])
end
local dead = {}
for _, m in ipairs(redis.call('SMEMBERS', nodes)) do
  if m ~= ARGV[2] and redis.call('EXISTS', P .. 'node:' .. m) == 0 then dead[#dead + 1] = m end
end
return {existed, has, dead}
`;

/**
 * Removes up to ARGV[3] of each kind of registration of a node: a dead one
 * (refused while it is alive again), or this node leaving (ARGV[4] = 1),
 * which the other nodes then see as dead once (see below).
 * Returns how many are left, or -1 when the node is alive.
 * ARGV: prefix, node, batch, leaving
 */
const REAP = `${PRELUDE}
local me = P .. 'node:' .. ARGV[2]
if ARGV[4] ~= '1' and redis.call('EXISTS', me) == 1 then return -1 end
local n = tonumber(ARGV[3])
for _, ref in ipairs(redis.call('SPOP', me .. ':s', n)) do
  local name, rest = dec(ref, 1)
  redis.call('HDEL', P .. 's:' .. name, string.sub(ref, rest))
end
for _, ref in ipairs(redis.call('SPOP', me .. ':r', n)) do
  local name, rest = dec(ref, 1)
  local uid, rest2 = dec(ref, rest)
  local joiner = string.sub(ref, rest2)
  local rkey = P .. 'r:' .. name
  local cur = redis.call('HGET', rkey, uid)
  if cur and dec(cur, 1) == joiner then redis.call('HDEL', rkey, uid) end
end
local left = redis.call('SCARD', me .. ':s') + redis.call('SCARD', me .. ':r')
if left == 0 then
  if ARGV[4] == '1' then
    redis.call('DEL', me)
    -- Leaving with other nodes alive: stay listed without a mark, so their
    -- next heartbeat finds this node dead, tells their joiners routed to its
    -- sharers sharer-gone (a launch that reached it after it stopped
    -- listening told nobody) and removes it from the list.
    for _, m in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
      if m ~= ARGV[2] and redis.call('EXISTS', P .. 'node:' .. m) == 1 then return 0 end
    end
  end
  redis.call('SREM', P .. 'nodes', ARGV[2])
end
return left
`;

/** Registrations of every known node: {shares, routes}. ARGV: prefix */
const COUNTS = `${PRELUDE}
local shares, routes = 0, 0
for _, m in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  shares = shares + redis.call('SCARD', P .. 'node:' .. m .. ':s')
  routes = routes + redis.call('SCARD', P .. 'node:' .. m .. ':r')
end
return {shares, routes}
`;

export const SCRIPTS = {
  sigserveAddShare: ADD_SHARE,
  sigserveRemoveShare: REMOVE_SHARE,
  sigserveRoute: ROUTE,
  sigserveRestoreRoute: RESTORE_ROUTE,
  sigserveRemoveRoute: REMOVE_ROUTE,
  sigserveBeat: BEAT,
  sigserveReap: REAP,
  sigserveCounts: COUNTS,
} as const;

export type ScriptName = keyof typeof SCRIPTS;
