"""The one check every request of the bench makes: a failed one stops the measurement
with the service's own words, rather than being timed as if it had worked."""

import http.client

import httpx

__all__ = ["checked", "exchanged"]


def checked(reply: httpx.Response) -> httpx.Response:
    if not 200 <= reply.status_code < 300:
        raise RuntimeError(f"{reply.request.method} {reply.request.url.path}: "
                           f"{reply.status_code} {reply.text[:300]}")
    return reply


def exchanged(connection: http.client.HTTPConnection, method: str, path: str,
              body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    """One request on a kept-alive standard-library connection; the answer's body. A
    connection the server closed while it idled (uvicorn's keep-alive timeout) is opened
    again once, as httpx does."""
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
    except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
        connection.close()
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
    data = reply.read()
    if not 200 <= reply.status < 300:
        raise RuntimeError(f"{method} {path}: {reply.status} {data[:300]!r}")
    return data
