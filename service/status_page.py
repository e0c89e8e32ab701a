"""The status page at `/`: buffers, rates, weights and episode returns, for people.

The page is static HTML, CSS and JavaScript (in the `status` folder beside this module)
that polls the JSON API from the browser, so the service renders nothing per request
and the page shows exactly what any other client would see. The files themselves are
open, like /healthz: they hold no data, and with API keys set the page asks for one
and sends it on its own API requests.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import FileResponse

STATUS_DIR = Path(__file__).parent / "status"
ASSETS_URL = "/status"
# The page talks to this service only, runs only its own script, and sets no inline
# styles or scripts a stored buffer or source name could smuggle in.
CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:"


def install_status_page(app: FastAPI) -> None:
    """Serve the page at `/` and its script and style under /status/."""

    async def status_page(request: Request) -> FileResponse:
        # Revalidated on every load, so an upgraded service never runs a stale page.
        return FileResponse(STATUS_DIR / "index.html", headers={
            "Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY})

    app.mount(ASSETS_URL, StaticFiles(directory=STATUS_DIR), name="status-assets")
    app.add_route("/", status_page, include_in_schema=False)
