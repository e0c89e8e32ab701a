"""The one check every request of the bench makes: a failed one stops the measurement
with the service's own words, rather than being timed as if it had worked."""

import httpx

__all__ = ["checked"]


def checked(reply: httpx.Response) -> httpx.Response:
    if not 200 <= reply.status_code < 300:
        raise RuntimeError(f"{reply.request.method} {reply.request.url.path}: "
                           f"{reply.status_code} {reply.text[:300]}")
    return reply
