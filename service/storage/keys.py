"""Redis key names. One buffer's keys share the hash tag `{name}`, so a Redis
Cluster keeps a buffer on one node (its Lua scripts need that) and spreads
buffers across nodes."""

REGISTRY = "replay:buffers"
RESERVATIONS = "replay:reservations"


def meta(name: str) -> str:
    return f"replay:{{{name}}}:meta"


def segment(name: str, index: int) -> str:
    return f"replay:{{{name}}}:seg:{index}"


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
