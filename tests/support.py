"""Real processes for the tests: the service as `replay serve` runs it, over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.redis_server import free_port

REPO = Path(__file__).resolve().parent.parent


class ServiceProcess:
    """`replay serve` in a child process, pointed at a given Redis."""

    def __init__(self, redis_url: str, log_dir: Path, **settings: object) -> None:
        self.redis_url = redis_url
        self.port = free_port()
        self.log_path = log_dir / f"service-{self.port}.log"
        self.env = {**os.environ, **{f"REPLAY_{k.upper()}": str(v) for k, v in settings.items()}}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> ServiceProcess:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(self.port),
             "--redis-url", self.redis_url],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"service exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"service did not start in {timeout_s} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]
