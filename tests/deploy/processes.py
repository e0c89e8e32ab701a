"""The deployment tests' stand-ins for containers: a compose service's command run as a
local process, its output in a log file."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import redis

__all__ = ["Container", "wait_for"]


class Container:
    """One service of the compose file as a local process, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.log = name, command, log
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=log.parent)

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def wait(self, timeout_s: float) -> int | None:
        """The exit code, or None if it still runs after timeout_s."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for(what: str, check: Any, container: Container, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert container.process.poll() is None, f"{container.name} exited:\n" + (
            container.output())
        try:
            if check():
                return
        except (httpx.TransportError, redis.ConnectionError, redis.BusyLoadingError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s:.0f} s:\n{container.output()}")
