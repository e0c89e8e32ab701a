"""A flow's `Call` as the `httpx.Request` both clients hand straight to their transport.

The clients skip httpx's Client layer on purpose: for one small call it spent about
170 us of CPU (of 500) on what this SDK does not use: merging and re-parsing URLs
three times, cookie jars, auth and redirect flows. Without it a call does just what
it needs: this URL, these headers, this timeout. Proxies named in the environment are
not used; the service is reached directly.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import httpx

from replay_service.client.protocol import Call

__all__ = ["CallBuilder"]

_KEPT_URLS = 256


def _user_agent() -> str:
    try:
        return f"replay-service-sdk/{version('replay-service')}"
    except PackageNotFoundError:
        return "replay-service-sdk"


class CallBuilder:
    def __init__(self, url: str, timeout_s: float, headers: dict[str, str] | None) -> None:
        self.base_url = httpx.URL(url)
        # The base's path is kept (a service mounted under a prefix), without its end slash.
        self._prefix = str(self.base_url).rstrip("/")
        self._headers = {"user-agent": _user_agent(), **(headers or {})}
        self._timeout = httpx.Timeout(timeout_s).as_dict()

        # Parsed URLs by path and query: a training loop asks for the same few over and
        # over, and parsing one took 100 us.
        self._urls: dict[tuple[str, tuple[tuple[str, str | int | float], ...]], httpx.URL] = {}

    def request(self, call: Call) -> httpx.Request:
        headers = self._headers if call.headers is None else {**self._headers, **call.headers}
        return httpx.Request(call.method, self._url(call), headers=headers,
                             content=call.content, extensions={"timeout": self._timeout})

    def _url(self, call: Call) -> httpx.URL:
        key = (call.path, tuple(call.params.items()) if call.params else ())
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= _KEPT_URLS:
                self._urls.clear()
            url = self._urls[key] = httpx.URL(self._prefix + call.path, params=call.params)
        return url
