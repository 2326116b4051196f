"""Leaderboards on Redis sorted sets: a mirror of ``leaderboard_scores``, read in one round trip.

Layout per board (tenant ``T``, campaign ``C``, period key ``P``):
- ``lb:{T}:C:P``: sorted set; member ``{reached_at_us:017d}|{distributor_id}``, score
  ``-score``. Ascending order is then exactly the leaderboard order: score desc, earliest
  reached, distributor id (ties on the score sort by member, lexicographically).
- ``lbm:{T}:C:P``: hash distributor_id -> current member.
- ``lbh:{T}``: set of held/frozen distributors, filtered out at read time.
The braces are literal: ``{T}`` is the Redis Cluster hash tag, so every key of a tenant lives
in one hash slot and the scripts (which read a board with the tenant's held set) and the
pipelines (a batch of one tenant's changes) run unchanged on a cluster.
Changes arrive after the database commit (``Connection.after_commit``) through a Lua script
that moves a member atomically. A board missing in Redis (a restart, a board that predates
Redis) is rebuilt from the database on first read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from server.campaigns.boards import Standing
from server.db import Database
from server.redisconn import is_cluster

__all__ = ["RedisBoard"]

_INCREMENT = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
local score = 0
local reached = ARGV[3]
if old then
  score = -tonumber(redis.call('ZSCORE', KEYS[1], old))
  local old_reached = string.sub(old, 1, 17)
  if old_reached > reached then reached = old_reached end
  redis.call('ZREM', KEYS[1], old)
end
score = score + tonumber(ARGV[2])
local member = reached .. '|' .. ARGV[1]
redis.call('ZADD', KEYS[1], -score, member)
redis.call('HSET', KEYS[2], ARGV[1], member)
return score
"""

# The same for several changes of one tenant in one call (keys: zset, members per change; args:
# distributor, delta, reached per change). Used on a Redis Cluster, whose client refuses
# EVALSHA in a pipeline; the tenant's keys share its hash slot, so one script may touch them.
_INCREMENT_MANY = """
for i = 1, #KEYS / 2 do
  local zset, members = KEYS[2 * i - 1], KEYS[2 * i]
  local who, reached = ARGV[3 * i - 2], ARGV[3 * i]
  local old = redis.call('HGET', members, who)
  local score = 0
  if old then
    score = -tonumber(redis.call('ZSCORE', zset, old))
    local old_reached = string.sub(old, 1, 17)
    if old_reached > reached then reached = old_reached end
    redis.call('ZREM', zset, old)
  end
  score = score + tonumber(ARGV[3 * i - 1])
  local member = reached .. '|' .. who
  redis.call('ZADD', zset, -score, member)
  redis.call('HSET', members, who, member)
end
return #KEYS / 2
"""

_RANK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-2} end
local held = redis.call('SMEMBERS', KEYS[3])
for _, h in ipairs(held) do if h == ARGV[1] then return {-1} end end
local m = redis.call('HGET', KEYS[2], ARGV[1])
if not m then return {0} end
local r0 = redis.call('ZRANK', KEYS[1], m)
local above_held = 0
for _, h in ipairs(held) do
  local hm = redis.call('HGET', KEYS[2], h)
  if hm and redis.call('ZRANK', KEYS[1], hm) < r0 then above_held = above_held + 1 end
end
local span = tonumber(ARGV[2]) + #held
local above = {}
if r0 > 0 and tonumber(ARGV[2]) > 0 then
  above = redis.call('ZRANGE', KEYS[1], math.max(0, r0 - span), r0 - 1, 'WITHSCORES')
end
local below = {}
if tonumber(ARGV[2]) > 0 then
  below = redis.call('ZRANGE', KEYS[1], r0 + 1, r0 + span, 'WITHSCORES')
end
return {1, r0 - above_held + 1, redis.call('ZSCORE', KEYS[1], m), above, below, held}
"""

_TOP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-2} end
local held = redis.call('SMEMBERS', KEYS[2])
return {redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) + #held - 1, 'WITHSCORES'), held}
"""


def _score(raw: bytes | str) -> int:
    """A sorted-set score as an integer. Redis prints integral doubles as integers ("-1234"),
    and scores here are integers well inside 2^53, so no float is involved."""
    return int(raw)


def _keys(tenant_id: str, campaign_id: str, key: str) -> tuple[str, str]:
    suffix = f"{{{tenant_id}}}:{campaign_id}:{key}"
    return f"lb:{suffix}", f"lbm:{suffix}"


def _held_key(tenant_id: str) -> str:
    return f"lbh:{{{tenant_id}}}"


def _standings(flat: Sequence[Any], held: set[str]) -> list[Standing]:
    out: list[Standing] = []
    for n in range(0, len(flat), 2):
        member = flat[n].decode() if isinstance(flat[n], bytes) else flat[n]
        reached, _, distributor = member.partition("|")
        if distributor not in held:
            out.append((distributor, -_score(flat[n + 1]), int(reached)))
    return out


class RedisBoard:
    def __init__(self, redis: Any, db: Database) -> None:
        self.redis = redis
        self.db = db
        self._clustered = is_cluster(redis)
        self._increment = redis.register_script(_INCREMENT)
        self._increment_many = redis.register_script(_INCREMENT_MANY)
        self._rank = redis.register_script(_RANK)
        self._top = redis.register_script(_TOP)

    async def apply(
        self, tenant_id: str, changes: Sequence[tuple[str, str, str, int, int]]
    ) -> None:
        if self._clustered:
            keys: list[str] = []
            args: list[Any] = []
            for campaign_id, key, distributor, delta, reached in changes:
                keys.extend(_keys(tenant_id, campaign_id, key))
                args.extend((distributor, delta, f"{reached:017d}"))
            for start in range(0, len(changes), 500):  # a bounded script run
                await self._increment_many(
                    keys=keys[2 * start : 2 * start + 1000], args=args[3 * start : 3 * start + 1500]
                )
            return
        # EVALSHA straight into the pipeline: a pipeline of Script objects would first ask
        # SCRIPT EXISTS, an extra round trip per call. A Redis that lost its script cache
        # (a restart) answers NOSCRIPT: load the script and send the batch again.
        for attempt in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                for campaign_id, key, distributor, delta, reached in changes:
                    zset, members = _keys(tenant_id, campaign_id, key)
                    pipe.evalsha(
                        self._increment.sha,
                        2,
                        zset,
                        members,
                        distributor,
                        delta,
                        f"{reached:017d}",
                    )
                try:
                    await pipe.execute()
                    return
                except NoScriptError:
                    if attempt:
                        raise
                    await self.redis.script_load(_INCREMENT)

    async def set_held(self, tenant_id: str, distributor_id: str, held: bool) -> None:
        if held:
            await self.redis.sadd(_held_key(tenant_id), distributor_id)
        else:
            await self.redis.srem(_held_key(tenant_id), distributor_id)

    async def _rebuild(self, tenant_id: str, campaign_id: str, key: str) -> None:
        """Load a board that Redis does not have (a restart, a board older than Redis)."""
        rows = await self.db.fetch(
            "SELECT distributor_id, score, reached_at_us FROM leaderboard_scores"
            " WHERE tenant_id = $1 AND campaign_id = $2 AND period_key = $3",
            tenant_id,
            campaign_id,
            key,
        )
        held = await self.db.fetch(
            "SELECT distributor_id FROM distributors WHERE tenant_id = $1 AND status <> 'active'",
            tenant_id,
        )
        if held:
            await self.redis.sadd(_held_key(tenant_id), *[r[0] for r in held])
        for start in range(0, len(rows), 5000):
            await self.apply(
                tenant_id,
                [
                    (campaign_id, key, r[0], int(r[1]), int(r[2]))
                    for r in rows[start : start + 5000]
                ],
            )

    async def _call(
        self, script: Any, board: tuple[str, str, str], keys: list[str], args: list[Any]
    ) -> Any:
        """Run a read script; on a board Redis does not have (-2), load it once and retry."""
        reply = await script(keys=keys, args=args)
        if reply and reply[0] == -2:
            await self._rebuild(*board)
            reply = await script(keys=keys, args=args)
        return reply

    async def top(self, tenant_id: str, campaign_id: str, key: str, limit: int) -> list[Standing]:
        zset, _ = _keys(tenant_id, campaign_id, key)
        reply = await self._call(
            self._top, (tenant_id, campaign_id, key), [zset, _held_key(tenant_id)], [limit]
        )
        if reply[0] == -2:  # an empty board
            return []
        flat, held = reply
        return _standings(flat, {h.decode() for h in held})[:limit]

    async def rank(
        self, tenant_id: str, campaign_id: str, key: str, distributor_id: str, around: int
    ) -> tuple[int | None, int, list[Standing], list[Standing]]:
        zset, members = _keys(tenant_id, campaign_id, key)
        reply = await self._call(
            self._rank,
            (tenant_id, campaign_id, key),
            [zset, members, _held_key(tenant_id)],
            [distributor_id, around],
        )
        if int(reply[0]) != 1:
            return None, 0, [], []
        held = {h.decode() for h in reply[5]}
        above = _standings(reply[3], held)[-around:] if around else []
        below = _standings(reply[4], held)[:around]
        return int(reply[1]), -_score(reply[2]), above, below
