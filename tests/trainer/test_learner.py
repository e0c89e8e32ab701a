"""The DQN update: TD targets by hand, bootstrapping, loss, target sync and actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from replay_service.trainer.config import TrainConfig
from replay_service.trainer.learner import DQNLearner, TensorBatch
from replay_service.trainer.network import NatureCNN, QNetwork, import_weights


def flat(size: int) -> gym.spaces.Box:
    return gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)


def tiny_learner(double_dqn: bool = False) -> DQNLearner:
    """Q(s) = relu(s) for the target and the swapped relu(s) for the online net, gamma 0.5."""
    config = TrainConfig(net_arch=(2,), gamma=0.5, double_dqn=double_dqn, device="cpu",
                         log_dir=None)
    learner = DQNLearner(flat(2), num_actions=2, config=config)
    identity, swap = torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    for network, last in ((learner.target, identity), (learner.online, swap)):
        import_weights(network, {"layers.0.weight": identity, "layers.0.bias": torch.zeros(2),
                                 "layers.2.weight": last, "layers.2.bias": torch.zeros(2)})
    return learner


def td_target(learner: DQNLearner, reward: list[float], next_obs: list[list[float]],
              done: list[bool]) -> list[float]:
    values = learner.td_target(torch.tensor(reward), torch.tensor(next_obs),
                               torch.tensor(done, dtype=torch.float32))
    return values.tolist()


def random_batch(rng: np.random.Generator, *leading: int) -> dict[str, np.ndarray]:
    return {
        "obs": rng.standard_normal((*leading, 4), dtype=np.float32),
        "action": rng.integers(2, size=leading),
        "reward": rng.standard_normal(leading, dtype=np.float32),
        "next_obs": rng.standard_normal((*leading, 4), dtype=np.float32),
        "done": rng.random(leading) < 0.2,
    }


def test_td_target_dqn_equals_hand_computation() -> None:
    # Q_target(s') = s' = [1, 3] and [2, 0.5]: the max is 3 and 2.
    targets = td_target(tiny_learner(), [1.0, -1.0], [[1.0, 3.0], [2.0, 0.5]], [False, False])
    assert targets == pytest.approx([1.0 + 0.5 * 3.0, -1.0 + 0.5 * 2.0])


def test_td_target_double_dqn_equals_hand_computation() -> None:
    # The online net swaps the actions, so it picks a' = 0 for [1, 3] (Q_online = [3, 1])
    # and a' = 1 for [2, 0.5]; the target values those at 1 and 0.5.
    targets = td_target(tiny_learner(double_dqn=True), [1.0, -1.0], [[1.0, 3.0], [2.0, 0.5]],
                        [False, False])
    assert targets == pytest.approx([1.0 + 0.5 * 1.0, -1.0 + 0.5 * 0.5])


@pytest.mark.parametrize("double_dqn", [False, True])
def test_td_target_terminal_does_not_bootstrap_truncated_does(double_dqn: bool) -> None:
    # The same transition stored as terminated (done) and as truncated (done=False).
    targets = td_target(tiny_learner(double_dqn), [1.0, 1.0], [[4.0, 4.0], [4.0, 4.0]],
                        [True, False])
    assert targets == pytest.approx([1.0, 1.0 + 0.5 * 4.0])


def test_update_lowers_loss_on_fixed_batch() -> None:
    torch.manual_seed(0)
    learner = DQNLearner(flat(4), 2, TrainConfig(learning_rate=1e-3, device="cpu", log_dir=None))
    batch = random_batch(np.random.default_rng(0), 64)
    first = learner.update(batch)
    for _ in range(30):
        last = learner.update(batch)
    assert last.loss < 0.5 * first.loss
    assert learner.gradient_steps == 31


def test_train_round_steps_once_per_minibatch() -> None:
    torch.manual_seed(0)
    learner = DQNLearner(flat(4), 2, TrainConfig(device="cpu", log_dir=None))
    metrics = learner.train_round(random_batch(np.random.default_rng(0), 8, 16))
    assert metrics.gradient_steps == 8 == learner.gradient_steps
    assert np.isfinite(metrics.loss) and np.isfinite(metrics.mean_q)


def test_train_round_accepts_read_only_arrays() -> None:
    # Arrays decoded from a response body are read-only views; they must not warn.
    batch = random_batch(np.random.default_rng(0), 2, 16)
    for array in batch.values():
        array.flags.writeable = False
    learner = DQNLearner(flat(4), 2, TrainConfig(device="cpu", log_dir=None))
    assert learner.train_round(batch).gradient_steps == 2


def test_tensor_batch_indexes_minibatches() -> None:
    batches = TensorBatch.from_numpy(random_batch(np.random.default_rng(0), 3, 5),
                                     torch.device("cpu"))
    assert len(batches) == 3
    assert batches[1].obs.shape == (5, 4) and batches[1].action.dtype == torch.int64
    assert batches[1].done.dtype == torch.float32


def test_sync_target_copies_online_weights() -> None:
    learner = DQNLearner(flat(4), 2, TrainConfig(device="cpu", log_dir=None))
    learner.update(random_batch(np.random.default_rng(0), 64))
    online, target = learner.online.state_dict(), learner.target.state_dict()
    assert not all(torch.equal(online[name], target[name]) for name in online)
    learner.sync_target()
    target = learner.target.state_dict()
    assert all(torch.equal(online[name], target[name]) for name in online)
    assert not any(parameter.requires_grad for parameter in learner.target.parameters())


def test_act_greedy_at_epsilon_zero_random_at_one() -> None:
    learner = tiny_learner()
    obs = np.array([[1.0, 3.0], [2.0, 0.5]] * 50, dtype=np.float32)
    greedy = learner.act(obs, 0.0, np.random.default_rng(0))
    # The online net swaps the inputs: Q = [3, 1] picks 0, Q = [0.5, 2] picks 1.
    np.testing.assert_array_equal(greedy, [0, 1] * 50)
    assert greedy.dtype == np.int64
    explored = learner.act(obs, 1.0, np.random.default_rng(0))
    assert 0 < np.mean(explored != greedy) < 1


def test_a_learner_on_frames_trains_the_cnn_on_uint8_minibatches() -> None:
    torch.manual_seed(0)
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    learner = DQNLearner(frames, 6, TrainConfig(batch_size=4, device="cpu", log_dir=None))
    assert isinstance(learner.online, NatureCNN) and isinstance(learner.target, NatureCNN)
    rng = np.random.default_rng(0)
    batch = {**random_batch(rng, 2, 4),
             "obs": rng.integers(0, 256, (2, 4, *frames.shape), dtype=np.uint8),
             "next_obs": rng.integers(0, 256, (2, 4, *frames.shape), dtype=np.uint8)}
    # uint8 until the network: a quarter of the bytes a float batch would move to a GPU.
    assert TensorBatch.from_numpy(batch, learner.device).obs.dtype == torch.uint8
    metrics = learner.train_round(batch)
    assert metrics.gradient_steps == 2 and np.isfinite(metrics.loss)
    actions = learner.act(batch["obs"][0], 0.0, rng)
    assert actions.shape == (4,) and ((actions >= 0) & (actions < 6)).all()


def test_a_learner_on_flat_observations_trains_the_mlp() -> None:
    learner = DQNLearner(flat(8), 4, TrainConfig(net_arch=(32,), device="cpu", log_dir=None))
    assert isinstance(learner.online, QNetwork) and learner.online.obs_dim == 8
