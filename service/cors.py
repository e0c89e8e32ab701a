"""CORS, for browser pages on other origins (a dashboard, a notebook's front end) that
call the API: off unless REPLAY_CORS_ORIGINS names the origins allowed."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

__all__ = ["install_cors"]

# What the API's own requests use; the rest (Accept among them) a browser sends freely.
ALLOWED_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"]
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Accept", "Idempotency-Key",
                   "If-None-Match"]
# Response headers a page's script may read: a browser hides all but a few otherwise.
EXPOSED_HEADERS = ["ETag", "Retry-After", "X-Replay-Weights-Version"]
PREFLIGHT_CACHE_S = 600


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Answer preflights and add CORS headers for `origins` ("*": any origin).

    No credentials mode: the API key travels in an Authorization header the page sets
    itself, which CORS treats as any other request header, and the API uses no cookies.
    """
    if not origins:
        return
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=ALLOWED_METHODS,
                       allow_headers=ALLOWED_HEADERS, expose_headers=EXPOSED_HEADERS,
                       max_age=PREFLIGHT_CACHE_S)
