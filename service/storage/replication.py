"""Acknowledging a store only once N replicas hold it (REPLAY_REPLICA_ACKS).

Redis replicates asynchronously: a master that dies right after answering takes the
writes its replicas had not received yet with it. `WAIT n timeout` blocks until n
replicas hold every write made on its connection, so the insert script and WAIT
leave in one pipeline, on one connection (on a cluster, to the master of the
buffer's slot). A store WAIT cannot vouch for is answered 503 and left to the
client's retry, which its Idempotency-Key keeps from storing it twice: the retry
WAITs again, and succeeds once the replicas have it.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from replay_service.service.errors import NotReplicated

__all__ = ["ReplicatedWrites"]


class ReplicatedWrites:
    def __init__(self, redis: Redis, *, replicas: int, timeout_s: float) -> None:
        self._redis = redis
        self._replicas = replicas
        self._timeout_s = timeout_s

    async def run(self, script: AsyncScript, keys: list[bytes | str], args: list[Any]) -> Any:
        """The script's reply, once the replicas hold what it wrote."""
        while True:
            route = self._master_of(keys[0])
            # EVALSHA as a plain command: redis-py's cluster pipelines refuse its method.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                pipe.execute_command("WAIT", self._replicas, int(self._timeout_s * 1000),
                                     **({"target_nodes": route} if route else {}))
                reply, held = await pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError):  # a restarted or newly promoted master
                await self._redis.script_load(script.script)
                continue
            if isinstance(reply, Exception):
                raise reply
            if isinstance(held, Exception) or route != self._master_of(keys[0]):
                # WAIT went to a node that no longer holds the slot (a failover or a
                # moved slot the client learnt of on the way): it vouches for nothing.
                raise NotReplicated(self._replicas, 0, self._timeout_s)
            if held < self._replicas:
                raise NotReplicated(self._replicas, held, self._timeout_s)
            return reply

    def _master_of(self, key: bytes | str) -> Any:
        """On a cluster, the node the client takes for the master of `key`'s slot."""
        if isinstance(self._redis, RedisCluster):
            return self._redis.get_node_from_key(key)
        return None
