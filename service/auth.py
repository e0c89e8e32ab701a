"""API keys: a write key that may do everything, a read key that may only read.

With no key configured the service is open, and says so loudly at start (it binds
to loopback unless told otherwise). Keys arrive as `Authorization: Bearer <key>`,
are compared in constant time, and are never logged or echoed.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from replay_service.service.errors import Forbidden, Unauthorized
from replay_service.service.settings import Settings

log = logging.getLogger("replay.service")

# Liveness and readiness stay open: orchestrators probe them without credentials.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
READ_METHODS = frozenset({"GET", "HEAD"})

_bearer = HTTPBearer(auto_error=False, description="The read or the write API key.")


def _matches(given: str, expected: str | None) -> bool:
    if expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def authorize(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Reads need the read or the write key, everything else the write key."""
    check_key(request.app.state.settings, request.method, request.url.path,
              credentials.credentials if credentials else None)


def bearer_key(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, as HTTPBearer reads it (the
    hot path reads the header itself, without FastAPI's dependency solving)."""
    scheme, key = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and key) or scheme.lower() != "bearer":
        return None
    return key


def check_key(settings: Settings, method: str, path: str, key: str | None) -> None:
    write = settings.write_key.get_secret_value() if settings.write_key else None
    read = settings.read_key.get_secret_value() if settings.read_key else None
    if (write is None and read is None) or path in OPEN_PATHS:
        return
    if key is None:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'",
                           field="authorization")
    # Both comparisons always run, so the time taken tells nothing about either key.
    is_write, is_read = _matches(key, write), _matches(key, read)
    if not (is_write or is_read):
        raise Unauthorized("the API key is not valid", field="authorization")
    if not is_write and method not in READ_METHODS:
        raise Forbidden("the read key cannot change anything: use the write key",
                        field="authorization")


def warn_if_open(settings: Settings) -> None:
    if settings.write_key is None and settings.read_key is None:
        log.warning("NO API KEYS ARE SET: anyone who can reach %s:%d can read and write every "
                    "buffer. Set REPLAY_WRITE_KEY (and REPLAY_READ_KEY) before exposing it.",
                    settings.host, settings.port)
