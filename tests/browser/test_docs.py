"""Swagger UI and ReDoc render in a browser that can reach nothing but the service."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.browser.chromium import Chromium, Page
from tests.support import ServiceProcess

# The three operations the service exists for.
CORE_OPERATIONS = [("POST", "/buffers/{name}/transitions"), ("GET", "/buffers/{name}/sample"),
                   ("GET", "/buffers/{name}/size")]
# ReDoc's sidebar always shows this logo; the page's policy refuses it unsent.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

Screenshot = Callable[[Page, str], Path]


def test_swagger_ui_renders_the_api_from_the_service_alone(
        service: ServiceProcess, chromium: Chromium, screenshot: Screenshot) -> None:
    page = chromium.open(f"{service.url}/docs")
    rendered = page.wait_for("""(() => {
        const blocks = [...document.querySelectorAll('.opblock')].map((block) => [
            block.querySelector('.opblock-summary-method').textContent,
            block.querySelector('.opblock-summary-path').getAttribute('data-path')]);
        return blocks.length ? blocks : null;
    })()""")
    screenshot(page, "swagger-ui")

    for operation in CORE_OPERATIONS:
        assert list(operation) in rendered
    assert page.foreign_requests(service.url) == []
    assert page.errors == []
    assert f"{service.url}/docs-assets/swagger-ui-bundle.js" in page.requested_urls


def test_redoc_renders_without_a_key_or_the_internet(
        keyed_service: ServiceProcess, chromium: Chromium, screenshot: Screenshot) -> None:
    assert httpx.get(f"{keyed_service.url}/buffers").status_code == 401  # the API needs a key
    document = httpx.get(f"{keyed_service.url}/openapi.json").raise_for_status().json()
    operation_ids = {(method, path): document["paths"][path][method.lower()]["operationId"]
                     for method, path in CORE_OPERATIONS}

    page = chromium.open(f"{keyed_service.url}/redoc")
    rendered = page.wait_for(f"""(() => {{
        const ids = {json.dumps(list(operation_ids.values()))};
        const sections = ids.map((id) =>
            document.querySelector(`[data-section-id="operation/${{id}}"]`));
        return sections.every(Boolean) ? sections.map((section) => section.innerText) : null;
    }})()""")
    screenshot(page, "redoc")

    for (method, path), text in zip(operation_ids, rendered, strict=True):
        assert method in text and path in text
    assert not page.evaluate("!!document.querySelector('link[href*=\"fonts.googleapis\"]')")
    foreign = page.foreign_requests(keyed_service.url)
    assert all(url == REDOCLY_LOGO and reason == "csp" for url, reason in foreign), foreign
    assert [error for error in page.errors if REDOCLY_LOGO not in error] == []
