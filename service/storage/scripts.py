"""The Lua scripts that make each buffer operation one atomic round trip."""

from dataclasses import dataclass
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# Redis 6.2 has no function libraries, so shared Lua (the sum tree, the rate limit
# check) is prepended to each script that uses it.
_PRELUDES = {
    "insert": ("sum_tree",),
    "sample": ("rate_limit",),
    "sample_prioritized": ("sum_tree", "rate_limit"),
    "update_priorities": ("sum_tree",),
}


@dataclass(frozen=True)
class Scripts:
    create: AsyncScript
    adopt_schema: AsyncScript
    insert: AsyncScript
    sample: AsyncScript
    sample_prioritized: AsyncScript
    update_priorities: AsyncScript
    read_range: AsyncScript
    reserve_memory: AsyncScript
    publish_weights: AsyncScript
    fetch_weights: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> "Scripts":
        """Scripts are sent by hash and re-sent after a Redis restart (NOSCRIPT)."""
        lua = files(__package__).joinpath("lua")

        def source(name: str) -> str:
            return "\n".join(lua.joinpath(f"{part}.lua").read_text()
                             for part in (*_PRELUDES.get(name, ()), name))

        return cls(**{name: redis.register_script(source(name))
                      for name in cls.__dataclass_fields__})
