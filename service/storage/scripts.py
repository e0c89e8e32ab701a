"""The Lua scripts that make each buffer operation one atomic round trip."""

from dataclasses import dataclass
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# EVAL has no libraries of shared functions (Redis 7's functions are a separate API
# with its own deployment), so the shared Lua is prepended to each script that uses
# it: meta.lua loads and checks the meta hash, layout.lua locates slots in segments,
# reserve.lua keeps the memory budget, sum_tree.lua and rate_limit.lua serve sampling.
_PRELUDES = {
    "create": ("reserve",),
    "adopt_schema": ("meta", "reserve"),
    "delete": ("meta",),
    "insert": ("meta", "layout", "sum_tree"),
    "read_range": ("meta", "layout"),
    "sample": ("meta", "layout", "rate_limit"),
    "sample_prioritized": ("meta", "layout", "sum_tree", "rate_limit"),
    "update_priorities": ("meta", "layout", "sum_tree"),
    "shard_state": ("meta", "layout", "sum_tree"),
}


def source(name: str) -> str:
    """A script's text as Redis runs it: its preludes, then itself."""
    lua = files(__package__).joinpath("lua")
    return "\n".join(lua.joinpath(f"{part}.lua").read_text()
                     for part in (*_PRELUDES.get(name, ()), name))


@dataclass(frozen=True)
class Scripts:
    create: AsyncScript
    adopt_schema: AsyncScript
    delete: AsyncScript
    insert: AsyncScript
    sample: AsyncScript
    sample_prioritized: AsyncScript
    update_priorities: AsyncScript
    read_range: AsyncScript
    shard_state: AsyncScript
    publish_weights: AsyncScript
    fetch_weights: AsyncScript
    append_episodes: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> "Scripts":
        """Scripts are sent by hash and re-sent after a Redis restart (NOSCRIPT)."""
        return cls(**{name: redis.register_script(source(name))
                      for name in cls.__dataclass_fields__})
