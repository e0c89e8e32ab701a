"""The status page at `/`, rendered by Chromium from a real service holding real data."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from statistics import fmean
from typing import Any

import httpx
import numpy as np

from replay_service.wire.codec import SAFETENSORS, encode_safetensors
from tests.browser.chromium import Chromium, Page
from tests.service.factories import TRACKED_SCHEMA, create, store_binary, tracked_columns
from tests.support import ServiceProcess

Screenshot = Callable[[Page, str], Path]
KEY_STORAGE = "replay-service.api-key"


def row_state(name: str) -> str:
    """JavaScript: the buffer's table cells by field and its chart's points per source,
    or null while the page has not drawn the buffer yet."""
    return f"""(() => {{
        const row = document.querySelector(`tr[data-buffer=${{CSS.escape({json.dumps(name)})}}]`);
        const chart = document.querySelector(`svg[data-chart=${{CSS.escape({json.dumps(name)})}}]`);
        if (!row || !chart) return null;
        const cells = Object.fromEntries([...row.querySelectorAll('[data-field]')].map(
            (cell) => [cell.dataset.field, cell.textContent]));
        const series = Object.fromEntries([...chart.querySelectorAll('g[data-source]')].map(
            (group) => [group.dataset.source,
                        group.querySelector('path').getAttribute('d').split(/[ML]/).length - 1]));
        return {{cells, series}};
    }})()"""


def record_episodes(http: httpx.Client, name: str, episodes: list[tuple[str, float]]) -> None:
    body = {"episodes": [{"return": episode_return, "length": 10, "source": source}
                         for source, episode_return in episodes]}
    http.post(f"/buffers/{name}/episodes", json=body).raise_for_status()


def keep_storing_and_sampling(url: str, name: str, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        next_id = 10_000
        while not stop.wait(0.1):
            store_binary(http, name, tracked_columns(range(next_id, next_id + 20))
                         ).raise_for_status()
            http.get(f"/buffers/{name}/sample", params={"batch_size": 16}).raise_for_status()
            next_id += 20


def test_status_page_shows_buffers_weights_and_returns_live(
        service: ServiceProcess, http: httpx.Client, buffer_name: str, chromium: Chromium,
        screenshot: Screenshot) -> None:
    create(http, buffer_name, capacity=1000, schema=TRACKED_SCHEMA)
    store_binary(http, buffer_name, tracked_columns(range(250))).raise_for_status()
    episodes = [(f"collector-{i % 2}", float(10 + 3 * i if i % 2 else 60 - i)) for i in range(60)]
    record_episodes(http, buffer_name, episodes)
    for _ in range(2):
        http.put(f"/buffers/{buffer_name}/weights", headers={"content-type": SAFETENSORS},
                 content=encode_safetensors({"w": np.zeros(3, np.float32)})).raise_for_status()

    page = chromium.open(f"{service.url}/?refresh=0.5")
    drawn: dict[str, Any] = page.wait_for(row_state(buffer_name))

    assert drawn["cells"]["name"] == buffer_name
    assert drawn["cells"]["fill"] == "250 / 1,000 (25%)"
    assert drawn["cells"]["capacity"] == "1,000"
    assert drawn["cells"]["weights"] == "v2"
    assert drawn["cells"]["episodes"] == "60"
    assert drawn["cells"]["mean-return"] == f"{fmean(r for _, r in episodes[-20:]):.1f}"
    assert drawn["series"] == {"collector-0": 30, "collector-1": 30}

    stop = threading.Event()
    writer = threading.Thread(target=keep_storing_and_sampling,
                              args=(service.url, buffer_name, stop))
    writer.start()
    try:
        record_episodes(http, buffer_name, [("collector-2", 99.0)] * 3)
        live = page.wait_for(f"""(() => {{
            const drawn = {row_state(buffer_name)};
            const rate = (field) => Number(drawn?.cells[field].replace(/,/g, ''));
            return drawn && rate('insert-rate') > 0 && rate('sample-rate') > 0
                && drawn.cells.fill !== '250 / 1,000 (25%)' && drawn.series['collector-2']
                ? drawn : null;
        }})()""")
        shot = screenshot(page, "status-page")
    finally:
        stop.set()
        writer.join()
    assert live["series"] == {"collector-0": 30, "collector-1": 30, "collector-2": 3}
    assert live["cells"]["episodes"] == "63"
    assert shot.stat().st_size > 0
    assert page.foreign_requests(service.url) == []
    assert page.errors == []


def test_status_page_asks_for_a_key_and_sends_it(
        keyed_service: ServiceProcess, chromium: Chromium, buffer_name: str, read_key: str,
        write_key: str, screenshot: Screenshot) -> None:
    with httpx.Client(base_url=keyed_service.url, timeout=30,
                      headers={"authorization": f"Bearer {write_key}"}) as writer:
        create(writer, buffer_name, capacity=100, schema=TRACKED_SCHEMA)
        store_binary(writer, buffer_name, tracked_columns(range(10))).raise_for_status()

    page = chromium.open(f"{keyed_service.url}/?refresh=0.5")
    page.wait_for("!document.getElementById('key-form').hidden")
    screenshot(page, "asks-for-key")
    assert page.evaluate(row_state(buffer_name)) is None

    def enter_key(key: str) -> None:
        page.evaluate(f"""document.getElementById('key-input').value = {json.dumps(key)};
                          document.getElementById('key-form').requestSubmit()""")

    enter_key("not-the-key-of-this-service")
    page.wait_for("!document.getElementById('key-form').hidden && "
                  "document.getElementById('key-message').textContent.includes('refused')")
    enter_key(read_key)
    drawn = page.wait_for(row_state(buffer_name))
    screenshot(page, "with-read-key")

    assert drawn["cells"]["fill"] == "10 / 100 (10%)"
    assert page.evaluate(f"sessionStorage.getItem({json.dumps(KEY_STORAGE)})") == read_key
    assert page.foreign_requests(keyed_service.url) == []
    assert page.errors == []
