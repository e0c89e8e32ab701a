"""`replay` subcommands run as child processes: by the demo, the benchmarks and the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from replay_service.service.redis_server import free_port

__all__ = ["REPLAY", "ReplayProcess", "ServiceProcess"]

# The `replay` command as a child process: the interpreter running now, whatever PATH says.
REPLAY = (sys.executable, "-m", "replay_service.cli")


class ReplayProcess:
    """`replay <args>` in a child process, its output in a log file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None
                 ) -> None:
        self.args = args
        self.log_path = log_path
        self.env = env
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ReplayProcess:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen([*REPLAY, *self.args],
                                             env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int | None:
        """None until started."""
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        """None while it runs."""
        return self._process.poll() if self._process else None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int | None:
        """Ask it to stop (SIGTERM: a clean exit), kill it if it will not."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""


class ServiceProcess(ReplayProcess):
    """`replay serve` on a free loopback port, pointed at a given Redis."""

    def __init__(self, redis_url: str, log_dir: Path, **settings: object) -> None:
        self.port = free_port()
        env = {**os.environ, **{f"REPLAY_{key.upper()}": str(value)
                                for key, value in settings.items()}}
        super().__init__(["serve", "--port", str(self.port), "--redis-url", redis_url],
                         log_dir / f"service-{self.port}.log", env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> ServiceProcess:
        """Start, and return once it answers /readyz."""
        super().start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.exit_code() is not None:
                raise RuntimeError(f"the service exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the service did not get ready in {timeout_s:.0f} s:\n{self.log()}")
