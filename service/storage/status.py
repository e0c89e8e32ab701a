"""What a Lua script says happened: the first item of every reply, one table for all.

The scripts write each status as a quoted word opening the reply's table, e.g.
`return {'gone'}`; tests/service/test_script_status.py reads the Lua sources and
holds them and this table to the same set of words.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from replay_service.service.errors import BufferNotFound


class Status(Enum):
    OK = b"ok"
    GONE = b"gone"
    """No such buffer (any more)."""
    STALE = b"stale"
    """The buffer was deleted and re-created since the caller read its metadata."""
    CREATED = b"created"
    EXISTS = b"exists"
    TOO_MANY = b"too_many"
    """The service holds as many buffers as it may."""
    REFUSED = b"refused"
    """A ring that would not fit beside the others in the memory budget."""
    TOO_FEW = b"too_few"
    RATE_LIMITED = b"rate_limited"
    KEY_REUSED = b"key_reused"
    """An idempotency key seen before with another body."""
    REPEATED = b"repeated"
    """An idempotency key seen before with this body: the first answer, unchanged."""
    NOT_HELD = b"not_held"
    UNCHANGED = b"unchanged"
    """The caller holds the newest weights already."""
    UNPUBLISHED = b"unpublished"


class StaleMeta(Exception):
    """The buffer was deleted and re-created since this process cached it."""


RESTARTS = 5
"""Fresh reads of a buffer an operation makes before it gives up on one that other
requests keep deleting and creating again (answered BufferReplaced)."""


def status_of(reply: list[Any], name: str) -> Status:
    """The reply's status; a buffer gone or re-created raises, as every caller would."""
    status = Status(reply[0])
    if status is Status.GONE:
        raise BufferNotFound(name)
    if status is Status.STALE:
        raise StaleMeta
    return status
