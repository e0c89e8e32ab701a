"""ServiceStorage against the real service: TorchRL's buffers over it keep TensorDicts
exactly, sample only what is stored, run a DQN loop, and sample by the service's
priorities."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictSequential
from torchrl.data import ReplayBuffer, TensorDictReplayBuffer

from replay_service import Conflict, Prioritized, ReplayClient
from replay_service.integrations.torchrl import (
    ServicePrioritizedSampler,
    ServiceStorage,
    ServiceWriter,
)
from tests.stats import chi_square_rejects
from tests.support import ServiceProcess


@pytest.fixture
def storage(service: ServiceProcess, buffer_name: str) -> Iterator[ServiceStorage]:
    storage = ServiceStorage(100, url=service.url, buffer=buffer_name)
    yield storage
    storage.close()


@pytest.fixture
def prioritized(service: ServiceProcess, buffer_name: str) -> Iterator[ServiceStorage]:
    storage = ServiceStorage(100, url=service.url, buffer=buffer_name,
                             prioritized=Prioritized(alpha=1.0))
    yield storage
    storage.close()


def transitions(count: int, first_id: int = 0) -> TensorDict:
    """Transitions of many dtypes and shapes, nested keys among them; "id" numbers them."""
    generator = torch.Generator().manual_seed(first_id)
    return TensorDict({
        "id": torch.arange(first_id, first_id + count),
        "observation": torch.randn(count, 4, generator=generator),
        "pixels": torch.randint(0, 256, (count, 3, 5, 5), generator=generator,
                                dtype=torch.uint8),
        "action": torch.nn.functional.one_hot(torch.randint(0, 2, (count,),
                                                            generator=generator), 2),
        "done": torch.rand(count, 1, generator=generator) < 0.1,
        "next": {"observation": torch.randn(count, 4, generator=generator),
                 "reward": torch.randn(count, 1, generator=generator, dtype=torch.float64),
                 "step_count": torch.randint(-500, 500, (count, 1), generator=generator,
                                             dtype=torch.int16),
                 "half": torch.randn(count, 2, generator=generator).half()},
    }, batch_size=[count])


def assert_identical(got: TensorDict, expected: TensorDict) -> None:
    keys = set(expected.keys(include_nested=True, leaves_only=True))
    assert set(got.keys(include_nested=True, leaves_only=True)) == keys
    assert got.batch_size == expected.batch_size
    for key in keys:
        assert got[key].dtype == expected[key].dtype, key
        assert got[key].shape == expected[key].shape, key
        assert torch.equal(got[key], expected[key]), key


def test_a_tensordict_comes_back_bit_for_bit(storage: ServiceStorage) -> None:
    rb = ReplayBuffer(storage=storage, batch_size=64)
    data = transitions(40)
    assert torch.equal(rb.extend(data), torch.arange(40))
    assert len(rb) == 40
    assert_identical(storage.get(torch.arange(40)), data)  # read by slot
    assert_identical(rb[7], data[7])
    assert_identical(rb[torch.tensor([[3, 3], [39, 0]])],
                     data[torch.tensor([[3, 3], [39, 0]])])
    sample, info = rb.sample(return_info=True)  # drawn by the service
    assert_identical(sample, data[info["index"]])


def test_add_stores_one_transition(storage: ServiceStorage) -> None:
    rb = TensorDictReplayBuffer(storage=storage, batch_size=8)
    data = transitions(3)
    for row in data.unbind(0):
        rb.add(row)
    assert len(rb) == 3
    sample = rb.sample()
    assert torch.equal(sample["id"], sample["index"])
    assert_identical(sample.exclude("index"), data[sample["index"]])


def test_sampling_returns_only_the_rows_the_ring_still_holds(storage: ServiceStorage) -> None:
    rb = TensorDictReplayBuffer(storage=storage, batch_size=256)
    for first in range(0, 250, 50):
        rb.extend(transitions(50, first))
    assert len(rb) == 100
    ids = torch.cat([rb.sample()["id"] for _ in range(8)])
    sample = rb.sample()
    assert torch.equal(sample["index"], sample["id"] % 100)
    assert bool(((ids >= 150) & (ids < 250)).all()), "a transition overwritten was sampled"
    counts = np.bincount(ids.numpy() - 150, minlength=100)
    assert not chi_square_rejects(counts, np.full(100, 0.01))


# TorchRL 0.14.1's collectors module warns about its own classes as it loads.
@pytest.mark.filterwarnings("ignore:Creating .* WeightUpdaterBase is deprecated")
def test_a_dqn_loop_trains_on_cartpole_through_the_service(
        service: ServiceProcess, buffer_name: str) -> None:
    from torchrl.collectors import Collector
    from torchrl.envs import GymEnv
    from torchrl.modules import MLP, EGreedyModule, QValueActor
    from torchrl.objectives import DQNLoss, SoftUpdate

    torch.manual_seed(0)
    env = GymEnv("CartPole-v1")
    actor = QValueActor(MLP(out_features=2, num_cells=[32]), in_keys=["observation"],
                        spec=env.action_spec)
    explore = TensorDictSequential(actor, EGreedyModule(env.action_spec, eps_init=0.5))
    loss = DQNLoss(actor, action_space=env.action_spec, delay_value=True)
    updater = SoftUpdate(loss, eps=0.95)
    optimizer = torch.optim.Adam(loss.parameters(), lr=1e-3)
    storage = ServiceStorage(10_000, url=service.url, buffer=buffer_name,
                             prioritized=Prioritized(alpha=0.6))
    rb = TensorDictReplayBuffer(storage=storage, sampler=ServicePrioritizedSampler(beta=0.4),
                                writer=ServiceWriter(), batch_size=64)
    collector = Collector(env, explore, frames_per_batch=50, total_frames=400,
                          auto_register_policy_transforms=True)
    try:
        losses = []
        for frames in collector:
            rb.extend(frames.reshape(-1))
            for _ in range(4):
                batch = rb.sample()
                values = loss(batch)
                optimizer.zero_grad()
                values["loss"].backward()
                optimizer.step()
                updater.step()
                rb.update_tensordict_priority(batch)
                losses.append(values["loss"].item())
    finally:
        collector.shutdown()
        storage.close()
    assert len(losses) == 32 and all(np.isfinite(losses))
    assert len(rb) == 400
    assert set(batch.keys(True, True)) >= {"observation", "action", ("next", "reward"),
                                           ("next", "observation"), "priority_weight"}
    with ReplayClient(service.url, buffer_name) as client:
        assert client.size().total_inserted == 400


def test_priorities_set_with_extend_decide_what_is_drawn(prioritized: ServiceStorage) -> None:
    rb = TensorDictReplayBuffer(storage=prioritized, sampler=ServicePrioritizedSampler(beta=1.0),
                                writer=ServiceWriter(), priority_key="td_error", batch_size=500)
    data = transitions(50)
    data["td_error"] = data["id"].float() + 1  # transition i drawn in proportion to i + 1
    rb.extend(data)
    ids = torch.cat([rb.sample()["id"] for _ in range(40)])
    expected = np.arange(1, 51) / np.arange(1, 51).sum()
    assert not chi_square_rejects(np.bincount(ids.numpy(), minlength=50), expected)
    uniform = np.full(50, 1 / 50)
    assert chi_square_rejects(np.bincount(ids.numpy(), minlength=50), uniform)


def test_updating_a_sample_priority_changes_what_is_drawn(prioritized: ServiceStorage) -> None:
    rb = TensorDictReplayBuffer(storage=prioritized, sampler=ServicePrioritizedSampler(),
                                writer=ServiceWriter(), batch_size=256)
    rb.extend(transitions(50))
    sample = rb.sample()
    assert sample["priority_weight"].shape == (256,)
    favourite = int(sample["index"][0])
    sample["td_error"] = torch.where(sample["index"] == favourite, 1e6, 1e-6)
    rb.update_tensordict_priority(sample)
    drawn = rb.sample()["index"]
    # The slots no sample drew kept priority 1: together under 50 / (1e6 + 50).
    assert int((drawn == favourite).sum()) >= 250


def test_the_writers_indices_follow_the_service(service: ServiceProcess,
                                                buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, capacity=100) as client:
        client.store_batch({"id": np.arange(5)})
    storage = ServiceStorage(100, url=service.url, buffer=buffer_name)
    try:
        assert len(storage) == 5
        rb = ReplayBuffer(storage=storage, writer=ServiceWriter())
        assert torch.equal(rb.extend(TensorDict({"id": torch.arange(5, 8)}, [3])),
                           torch.arange(5, 8))
        default = ReplayBuffer(storage=storage)
        with pytest.warns(RuntimeWarning, match="writer=ServiceWriter"):
            default.extend(TensorDict({"id": torch.arange(8, 10)}, [2]))
        assert torch.equal(storage.get(torch.arange(10))["id"], torch.arange(10))
    finally:
        storage.close()


def test_what_the_service_cannot_keep_is_refused_by_name(service: ServiceProcess,
                                                         storage: ServiceStorage) -> None:
    # TorchRL's own writers move their cursor even when the storage refuses the data.
    rb = ReplayBuffer(storage=storage, writer=ServiceWriter())
    with pytest.raises(ValueError, match="'next__obs'"):
        rb.extend(TensorDict({"next__obs": torch.zeros(2)}, [2]))
    with pytest.raises(TypeError, match="'obs'.*bfloat16"):
        rb.extend(TensorDict({"obs": torch.zeros(2, dtype=torch.bfloat16)}, [2]))
    rb.extend(TensorDict({"obs": torch.zeros(2)}, [2]))
    with pytest.raises(ValueError, match="obs: float64"):
        rb.extend(TensorDict({"obs": torch.zeros(2, dtype=torch.float64)}, [2]))
    other = ServiceStorage(100, url=service.url, buffer=storage.buffer)
    try:
        with pytest.raises(Conflict):
            ReplayBuffer(storage=other).extend(TensorDict({"obs": torch.zeros(2, 3)}, [2]))
    finally:
        other.close()


def test_importing_the_package_loads_no_torchrl() -> None:
    code = ("import sys, replay_service, replay_service.integrations, replay_service.service.app; "
            "assert not {'torchrl', 'tensordict', 'torch'} & set(sys.modules), 'loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)
