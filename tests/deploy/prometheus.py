"""A real Prometheus server for the tests (Debian's `prometheus`): on a free loopback
port, its storage in a temporary folder, asked through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from replay_service.service.redis_server import free_port

__all__ = ["PrometheusServer", "prometheus_binary"]


def prometheus_binary(name: str = "prometheus") -> str:
    """`prometheus` or `promtool`, from Debian's package (.ci/run installs it)."""
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"no {name} here: apt-get install prometheus")
    return found


class PrometheusServer:
    """`prometheus` running one config; stopped on leaving the `with` block."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = workdir / "prometheus.log"
        self._command = [prometheus_binary(), f"--config.file={config}",
                         f"--storage.tsdb.path={workdir / 'tsdb'}",
                         f"--web.listen-address=127.0.0.1:{self.port}"]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(self._command, stdout=log,
                                             stderr=subprocess.STDOUT)
        self._wait_until(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200,
                         timeout_s=30, what="get ready")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector `promql` evaluates to now (an error if it does not parse)."""
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body: dict[str, Any] = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", (promql, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value_when(self, promql: str, expected: float, timeout_s: float = 30.0) -> float:
        """Poll `promql` (one series) until it equals `expected`: scrapes come every few
        seconds, so the first answers may be older."""
        seen: list[float] = []

        def matches() -> bool:
            result = self.query(promql)
            if len(result) == 1:
                seen.append(float(result[0]["value"][1]))
            return bool(seen) and seen[-1] == expected

        self._wait_until(matches, timeout_s=timeout_s,
                         what=f"answer {expected} to {promql} (saw {seen[-5:]})")
        return seen[-1]

    def _wait_until(self, condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None and self._process.poll() is None, (
                f"prometheus exited:\n{self._log.read_text(errors='replace')[-3000:]}")
            try:
                if condition():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus did not {what} in {timeout_s:.0f} s:\n"
                             f"{self._log.read_text(errors='replace')[-3000:]}")
