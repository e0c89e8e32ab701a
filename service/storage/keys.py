"""Redis key names. One buffer's keys share the hash tag `{name}`, so a Redis
Cluster keeps a buffer on one node (its Lua scripts need that) and spreads
buffers across nodes."""

REGISTRY = "replay:buffers"
RESERVATIONS = "replay:reservations"


def own_registry(name: str) -> str:
    """On a cluster, what the create script takes for the registry: a set in the buffer's
    own slot (a script cannot reach the shared one); REGISTRY is written beside it."""
    return f"replay:{{{name}}}:registered"


def own_reservation(name: str) -> str:
    """On a cluster, what the scripts take for the reservations: the buffer's own entry,
    in its slot. Each master's maxmemory then refuses what does not fit (507)."""
    return f"replay:{{{name}}}:reservation"


def meta(name: str) -> str:
    return f"replay:{{{name}}}:meta"


def segment(name: str, index: int) -> str:
    return f"replay:{{{name}}}:seg:{index}"


def frames(name: str, index: int) -> str:
    """A compressed buffer's frames of segment `index`: a hash of slot -> zstd frame."""
    return f"replay:{{{name}}}:frames:{index}"


def idempotency(name: str, incarnation: str, key: str) -> str:
    """A store's idempotency record; the incarnation keeps a re-created buffer's apart."""
    return f"replay:{{{name}}}:idem:{incarnation}:{key}"


def tree_level(name: str, level: int) -> str:
    """One level of a prioritized buffer's sum tree; level 0 holds the leaves."""
    return f"replay:{{{name}}}:tree:{level}"


def weights(name: str) -> str:
    return f"replay:{{{name}}}:weights"


def episodes(name: str) -> str:
    return f"replay:{{{name}}}:episodes"


def shard(name: str, incarnation: str, index: int, salt: int) -> str:
    """The name ring `index` of a sharded buffer is kept under, as a buffer of its own.
    It is its own hash tag, so a cluster places shards apart; the salt is what moves a
    shard's slot to the master chosen for it. No buffer name holds a `/`, and the
    incarnation keeps a re-created buffer's shards apart from the old ones'."""
    return f"{name}/{incarnation}.{index}.{salt}"


def is_shard(name: str) -> bool:
    return "/" in name
