"""Summarise py-spy's collapsed stacks (`replay bench --profile DIR` writes them): where
the service's time goes, by package of the innermost frame, and the functions that
take the most of it, inclusive and self.

    python -m replay_service.benchmarks.suite.profiles DIR/service-1w-cartpole-sample.txt --top 25
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ["Profile", "load"]

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_PACKAGES = ("uvicorn", "starlette", "fastapi", "pydantic_core", "pydantic", "redis", "hiredis",
             "numpy", "safetensors", "orjson", "anyio", "httptools", "uvloop", "asyncio",
             "h11", "logging", "service", "client", "email", "json", "typing")


class Profile:
    def __init__(self, stacks: Counter[tuple[str, ...]]) -> None:
        self.stacks = stacks
        self.total = sum(stacks.values())

    def inclusive(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for stack, samples in self.stacks.items():
            for frame in set(stack):
                counts[frame] += samples
        return counts

    def self_time(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for stack, samples in self.stacks.items():
            counts[stack[-1]] += samples
        return counts

    def by_package(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for stack, samples in self.stacks.items():
            counts[_package(stack[-1])] += samples
        return counts


def _normalise(frame: str) -> str:
    """`name (path:line)` -> `name (path)`, the path from its package on."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['name']} ({path})"


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match["file"] if match else frame
    for package in _PACKAGES:
        if re.search(rf"(^|/){package}(/|\.py|$)", path):
            return package
    return "other: " + path.split("/")[0] if "/" in path else "other"


def load(path: Path) -> Profile:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        frames = tuple(_normalise(frame) for frame in head.split(";")
                       if frame and not frame.startswith(("process ", "thread ")))
        if frames:
            stacks[frames] += int(count)
    return Profile(stacks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    for path in args.files:
        profile = load(path)
        print(f"== {path} ({profile.total} samples)")
        if not profile.total:
            continue
        for title, counts in [("by package of the innermost frame", profile.by_package()),
                              ("inclusive", profile.inclusive()), ("self", profile.self_time())]:
            print(f"-- {title}")
            for frame, samples in counts.most_common(args.top):
                print(f"{100 * samples / profile.total:6.1f}%  {frame}")


if __name__ == "__main__":
    main()
