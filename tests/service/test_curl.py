"""Another language needs nothing of ours: plain curl stores and samples."""

import json
import shutil
import subprocess

import pytest

from tests.support import ServiceProcess

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(*args: str) -> tuple[int, dict[str, object]]:
    result = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args],
                            capture_output=True, text=True, check=True, timeout=30)
    body, status = result.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def test_curl_alone_creates_stores_and_samples(service: ServiceProcess, buffer_name: str
                                               ) -> None:
    base = f"{service.url}/buffers/{buffer_name}"
    status, info = curl("-X", "PUT", base, "-H", "Content-Type: application/json",
                        "-d", '{"capacity": 1000}')
    assert status == 201 and info["capacity"] == 1000

    rows = [{"obs": [0.1 * i, 0.2, 0.3, 0.4], "action": i % 2, "reward": 1.0,
             "next_obs": [0.1 * i + 0.1, 0.2, 0.3, 0.4], "done": i == 2} for i in range(3)]
    status, stored = curl("-X", "POST", f"{base}/transitions",
                          "-H", "Content-Type: application/json",
                          "-d", json.dumps({"transitions": rows}))
    assert status == 200 and stored["stored"] == 3 and stored["size"] == 3

    status, batch = curl(f"{base}/sample?batch_size=3&replace=false")
    assert status == 200
    columns = batch["columns"]
    assert isinstance(columns, dict)
    assert sorted(columns["action"]) == [0, 0, 1]
    assert sorted(columns["done"]) == [False, False, True]

    status, size = curl(f"{base}/size")
    assert (status, size["size"], size["total_sampled"]) == (200, 3, 3)

    status, error = curl(f"{base}/sample?batch_size=9&replace=false")
    assert status == 409 and error["size"] == 3
