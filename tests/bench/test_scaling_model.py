"""The scaling model (benchmarks/scaling_model.py) on costs made up for the test: cores
from the per-1k costs, processes to the planned utilisation, masters for memory."""

from __future__ import annotations

import dataclasses

import pytest

from replay_service.benchmarks.scaling_model import (
    APE_X,
    Costs,
    PartCosts,
    Rates,
    machines,
    plan,
)

COSTS = Costs("test", store=PartCosts(service=10, redis=2, replica=1, client=5),
              sample=PartCosts(service=1, redis=1, replica=0, client=20),
              bytes_per_transition=441)


def test_plan_turns_costs_into_cores() -> None:
    planned = plan(COSTS, APE_X)
    assert planned.service_cores == pytest.approx((10 * 12_500 + 1 * 9_728) / 1e6)
    assert planned.redis_cores == pytest.approx((2 * 12_500 + 1 * 9_728) / 1e6)
    assert planned.replica_cores == pytest.approx(12_500 / 1e6)
    assert planned.learner_cores == pytest.approx(20 * 9_728 / 1e6)
    assert planned.actor_share == pytest.approx(5 * 12_500 / 1e6 / 360)
    assert (planned.replicas, planned.masters, planned.replica_nodes) == (1, 1, 1)
    assert planned.cores == 3
    assert planned.machines == 2  # a master and its replica on different machines


def test_plan_provisions_processes_to_the_utilisation() -> None:
    busy = Rates("busy", stored_per_s=1_000_000, sampled_per_s=0, capacity=1)
    planned = plan(COSTS, busy, utilisation=0.5, cores_per_machine=8, redis_replicas=0)
    assert planned.service_cores == pytest.approx(10.0)
    assert planned.replicas == 20
    assert planned.masters == 4  # 2 cores of Redis at half load each
    assert planned.cores == 24 and planned.machines == 3


def test_plan_adds_masters_for_memory() -> None:
    atari = dataclasses.replace(COSTS, bytes_per_transition=56_469)
    planned = plan(atari, APE_X, master_memory_gb=25)
    assert planned.memory_gb == pytest.approx(112.9, abs=0.1)
    assert (planned.masters_for_cpu, planned.masters_for_memory) == (1, 5)
    assert planned.masters == 5 and planned.replica_nodes == 5


def test_plan_refuses_a_utilisation_past_full() -> None:
    with pytest.raises(ValueError, match="utilisation"):
        plan(COSTS, APE_X, utilisation=1.5)


def test_more_machines_sustain_more_within_their_cores() -> None:
    given = [machines(COSTS, count, cores_per_machine=16) for count in (1, 2, 4)]
    for sized in given:
        assert sized.replicas + sized.masters + sized.replica_nodes <= sized.count * 16
        ratio = APE_X.sampled_per_s / APE_X.stored_per_s
        assert sized.sampled_per_s == pytest.approx(sized.stored_per_s * ratio)
        fitted = plan(COSTS, Rates("x", sized.stored_per_s, sized.sampled_per_s, 0))
        assert fitted.replicas == sized.replicas
    assert 1.8 < given[1].stored_per_s / given[0].stored_per_s < 2.2
    assert 1.8 < given[2].stored_per_s / given[1].stored_per_s < 2.2
