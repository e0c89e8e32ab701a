"""`replay demo` starts everything it needs and stops all of it, also on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from replay_service.cli.children import REPLAY
from tests.support import REPO


def start_demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*REPLAY, "demo", "--log-dir", str(tmp_path / "runs"),
         "--no-progress", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def assert_nothing_left(output: str, logs: Path) -> None:
    service_url = re.search(r"service at (http://\S+),", output)
    assert service_url, output
    try:
        httpx.get(f"{service_url[1]}/healthz", timeout=1)
        raise AssertionError("the service still answers")
    except httpx.TransportError:
        pass
    redis_log = (logs / "redis" / "redis.log").read_text()
    assert "ready to exit" in redis_log.lower() or "bye bye" in redis_log.lower(), redis_log
    for log in logs.glob("collector-*.log"):
        assert "Traceback" not in log.read_text(), log.read_text()


def test_demo_runs_to_its_budget_and_stops_everything(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, "--total-env-steps", "2000", "--seed", "1")
    output, _ = demo.communicate(timeout=240)
    assert demo.returncode == 1, output  # not solved in 2,000 steps
    assert "not solved: " in output and "learning curve: " in output, output
    assert_nothing_left(output, tmp_path / "runs" / "demo-logs")


def test_demo_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, "--seed", "2")
    assert demo.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if line.startswith("service at") or not line:
            break
    assert lines[-1].startswith("service at"), "".join(lines)
    time.sleep(3)  # training under way
    demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=60)
    output = "".join(lines) + rest
    assert demo.returncode != 0, output
    assert "SOLVED" not in output, output
    assert_nothing_left(output, tmp_path / "runs" / "demo-logs")
