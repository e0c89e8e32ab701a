"""The benchmark suite behind `replay bench`: the service over HTTP and through the SDK,
beside an in-process numpy ring buffer and the raw Redis ceiling, on the same payloads.

    replay bench --quick
    replay bench --only cartpole --only sample --json bench.json
"""

from replay_service.benchmarks.suite.plan import Config, selectors
from replay_service.benchmarks.suite.report import render, targets
from replay_service.benchmarks.suite.results import Results
from replay_service.benchmarks.suite.runner import run

__all__ = ["Config", "Results", "render", "run", "selectors", "targets"]
