"""Swagger UI at /docs and ReDoc at /redoc, with every asset served by the service itself.

FastAPI's own pages pull their scripts, styles, favicon and fonts from CDNs, so on a
machine without internet they stay blank. The assets come instead from the installed
`fastapi-offline` wheel (its `static` folder), so they are versioned with the
dependencies rather than copied into this repository.

The pages are plain Starlette routes, outside the API's dependencies: like /healthz they
need no API key, and neither does /openapi.json, which FastAPI serves the same way.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

# The browser itself refuses anything from another host: ReDoc's sidebar always shows a
# logo from cdn.redoc.ly, which no option turns off. Inline scripts and styles stay
# allowed: FastAPI's pages start Swagger UI inline and ReDoc injects its styles.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                           "font-src 'self' data:; worker-src 'self' blob:")


def install_docs(app: FastAPI) -> None:
    """Serve the docs pages; the app must be built with docs_url=None and redoc_url=None,
    or FastAPI's CDN-backed pages would answer first."""
    if app.openapi_url is None:
        raise ValueError("the docs pages need the OpenAPI document: openapi_url is None")
    openapi_url = app.openapi_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin_only(get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # No badge fetched from validator.swagger.io: nothing leaves the machine.
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None}))

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _same_origin_only(get_redoc_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False))

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)


def _same_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page
