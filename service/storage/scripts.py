"""The Lua scripts that make each buffer operation one atomic round trip."""

from dataclasses import dataclass
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@dataclass(frozen=True)
class Scripts:
    create: AsyncScript
    adopt_schema: AsyncScript
    insert: AsyncScript
    sample: AsyncScript
    read_range: AsyncScript
    reserve_memory: AsyncScript
    publish_weights: AsyncScript
    fetch_weights: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> "Scripts":
        """Scripts are sent by hash and re-sent after a Redis restart (NOSCRIPT)."""
        lua = files(__package__).joinpath("lua")
        return cls(**{
            name: redis.register_script(lua.joinpath(f"{name}.lua").read_text())
            for name in cls.__dataclass_fields__
        })
