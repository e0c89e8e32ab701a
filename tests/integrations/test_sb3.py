"""ServiceReplayBuffer against the real service: SB3's layout and semantics, and SB3's
own algorithms learning through it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from replay_service import Conflict, ReplayClient
from replay_service.integrations.sb3 import ServiceReplayBuffer
from tests.support import ServiceProcess

BOX_OBS = spaces.Box(-10.0, 10.0, (3,), np.float32)
SPACES = {
    "discrete actions": (BOX_OBS, spaces.Discrete(4)),
    "box actions": (BOX_OBS, spaces.Box(-1.0, 1.0, (2,), np.float32)),
    "float64 box actions": (BOX_OBS, spaces.Box(-1.0, 1.0, (2,), np.float64)),
    "discrete observations": (spaces.Discrete(7), spaces.Discrete(3)),
    "image observations": (spaces.Box(0, 255, (4, 5, 3), np.uint8), spaces.Discrete(2)),
}


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Small nets train several times faster on one thread on a 2-core machine."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


def open_buffer(service: ServiceProcess, name: str, obs_space: spaces.Space[Any],
                action_space: spaces.Space[Any], **kwargs: Any) -> ServiceReplayBuffer:
    return ServiceReplayBuffer(kwargs.pop("buffer_size", 1_000), obs_space, action_space,
                               device="cpu", url=service.url, buffer=name, **kwargs)


def steps(obs_space: spaces.Space[Any], action_space: spaces.Space[Any], n_envs: int,
          count: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                        np.ndarray, list[dict[str, Any]]]]:
    """Steps as SB3's collector passes them to add(); each transition's reward is its
    number, so a sampled row can be traced back to the step that stored it."""
    obs_space.seed(0)
    action_space.seed(0)
    for step in range(count):
        obs = np.stack([obs_space.sample() for _ in range(n_envs)])
        next_obs = np.stack([obs_space.sample() for _ in range(n_envs)])
        action = np.stack([action_space.sample() for _ in range(n_envs)])
        reward = (step * n_envs + np.arange(n_envs)).astype(np.float32)
        done = np.zeros(n_envs, bool)
        yield obs, next_obs, action, reward, done, [{} for _ in range(n_envs)]


@pytest.mark.parametrize("case", SPACES)
def test_samples_have_the_shapes_dtypes_and_device_of_sb3s_own_buffer(
        service: ServiceProcess, buffer_name: str, case: str) -> None:
    obs_space, action_space = SPACES[case]
    ours = open_buffer(service, buffer_name, obs_space, action_space, n_envs=2)
    theirs = ReplayBuffer(1_000, obs_space, action_space, device="cpu", n_envs=2)
    stored: dict[float, tuple[np.ndarray, ...]] = {}
    for obs, next_obs, action, reward, done, infos in steps(obs_space, action_space, 2, 50):
        ours.add(obs, next_obs, action, reward, done, infos)
        theirs.add(obs, next_obs, action, reward, done, infos)
        for env in range(2):
            stored[float(reward[env])] = (obs[env], action[env], next_obs[env])
    try:
        sample, expected = ours.sample(16), theirs.sample(16)
        for name, tensor, reference in zip(sample._fields, sample, expected, strict=True):
            if reference is None:
                assert tensor is None, name
                continue
            assert (tensor.shape, tensor.dtype, tensor.device) == (
                reference.shape, reference.dtype, reference.device), name
        for row in range(16):  # every row is one stored transition, whole
            obs, action, next_obs = stored[float(sample.rewards[row, 0])]
            np.testing.assert_array_equal(sample.observations[row].numpy(),
                                          np.reshape(obs, theirs.obs_shape))
            np.testing.assert_array_equal(sample.next_observations[row].numpy(),
                                          np.reshape(next_obs, theirs.obs_shape))
            np.testing.assert_array_equal(sample.actions[row].numpy(),  # as SB3 stores it
                                          np.reshape(action, theirs.action_dim).astype(
                                              theirs.actions.dtype))
        assert (ours.size(), ours.pos, ours.full) == (theirs.size(), theirs.pos, theirs.full)
    finally:
        ours.close()


def test_pos_full_and_size_count_steps_of_all_envs_as_sb3_does(
        service: ServiceProcess, buffer_name: str) -> None:
    obs_space, action_space = SPACES["box actions"]
    ours = open_buffer(service, buffer_name, obs_space, action_space, buffer_size=7, n_envs=2)
    theirs = ReplayBuffer(7, obs_space, action_space, device="cpu", n_envs=2)
    try:
        for step in steps(obs_space, action_space, 2, 4):
            ours.add(*step)
            theirs.add(*step)
            assert (ours.size(), ours.pos, ours.full) == (theirs.size(), theirs.pos, theirs.full)
        assert theirs.full  # 7 // 2 = 3 steps of 2 envs
        ours.client.flush()
        info = ours.client.info()
        assert (info.capacity, info.size) == (6, 6)
    finally:
        ours.close()


@pytest.mark.parametrize("handle_timeouts", [True, False])
def test_a_truncated_step_samples_with_done_0_when_timeouts_are_handled(
        service: ServiceProcess, buffer_name: str, handle_timeouts: bool) -> None:
    obs_space, action_space = SPACES["discrete actions"]
    buffer = open_buffer(service, buffer_name, obs_space, action_space, n_envs=2,
                         handle_timeout_termination=handle_timeouts)
    obs = np.zeros((2, 3), np.float32)
    try:
        # Env 0 hits its time limit (done and truncated), env 1 terminates.
        buffer.add(obs, obs, np.array([0, 1]), np.array([0.0, 1.0], np.float32),
                   np.array([True, True]), [{"TimeLimit.truncated": True},
                                            {"TimeLimit.truncated": False}])
        buffer.add(obs, obs, np.array([0, 1]), np.array([2.0, 3.0], np.float32),
                   np.array([False, False]), [{}, {}])
        sample = buffer.sample(256)
    finally:
        buffer.close()
    expected_done = {0.0: 0.0 if handle_timeouts else 1.0, 1.0: 1.0, 2.0: 0.0, 3.0: 0.0}
    rewards, dones = sample.rewards[:, 0].tolist(), sample.dones[:, 0].tolist()
    assert set(rewards) == set(expected_done)
    assert [expected_done[reward] for reward in rewards] == dones


def test_what_sb3s_collector_stores_equals_what_sb3s_own_buffer_holds(
        service: ServiceProcess, buffer_name: str) -> None:
    """Two CartPole envs cut at 12 steps, random actions (no training yet): the same
    run stores the same transitions here as in SB3's buffer, time limits and
    terminal observations included."""
    buffers = []
    for kwargs in ({}, {"replay_buffer_class": ServiceReplayBuffer,
                        "replay_buffer_kwargs": {"url": service.url, "buffer": buffer_name}}):
        env = make_vec_env("CartPole-v1", n_envs=2, seed=0,
                           env_kwargs={"max_episode_steps": 12})
        model = DQN("MlpPolicy", env, learning_starts=1_000, policy_kwargs={"net_arch": [8]},
                    seed=0, **kwargs)
        model.learn(200)
        buffers.append(model.replay_buffer)
    theirs, ours = buffers
    assert isinstance(theirs, ReplayBuffer) and isinstance(ours, ServiceReplayBuffer)
    ours.close()
    with ReplayClient(service.url, buffer_name) as client:
        held = client.read(0, 200)
    assert (ours.size(), ours.pos) == (theirs.size(), theirs.pos) == (100, 100)
    for field, array in [("obs", theirs.observations), ("next_obs", theirs.next_observations),
                         ("action", theirs.actions), ("done", theirs.dones),
                         ("timeout", theirs.timeouts)]:
        np.testing.assert_array_equal(held[field], array[:100].reshape(200, *array.shape[2:]),
                                      err_msg=field)
    truncated = theirs.timeouts[:100] == 1
    terminated = (theirs.dones[:100] == 1) & ~truncated
    assert truncated.any() and terminated.any()  # both kinds of episode end were stored


def test_vecnormalize_normalises_samples_with_its_current_statistics(
        service: ServiceProcess, buffer_name: str) -> None:
    env = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]), gamma=0.9)
    env.reset()
    for _ in range(50):  # running statistics far from mean 0, variance 1
        env.step(np.array([env.action_space.sample()]))
    buffer = open_buffer(service, buffer_name, env.observation_space, env.action_space)
    stored: list[tuple[np.ndarray, np.ndarray]] = []
    try:
        for obs, next_obs, action, reward, done, infos in steps(
                env.observation_space, env.action_space, 1, 20):
            buffer.add(obs, next_obs, action, reward / 100, done, infos)
            stored.append((obs[0], next_obs[0]))
        sample = buffer.sample(64, env=env)
    finally:
        buffer.close()
    assert sample.rewards.dtype == th.float32
    scale = np.sqrt(env.ret_rms.var + env.epsilon)
    assert not np.isclose(scale, 1.0)
    for row in range(64):  # the reward, unscaled, names the stored step
        step = int(np.rint(sample.rewards[row, 0].item() * scale * 100))
        obs, next_obs = stored[step]
        np.testing.assert_allclose(sample.observations[row].numpy(), env.normalize_obs(obs),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sample.next_observations[row].numpy(),
                                   env.normalize_obs(next_obs), rtol=1e-5, atol=1e-6)


def add_constant_steps(buffer: ServiceReplayBuffer, count: int, reward: float) -> None:
    obs = np.zeros((1, 3), np.float32)
    for _ in range(count):
        buffer.add(obs, obs, np.array([0]), np.array([reward], np.float32),
                   np.array([False]), [{}])


def test_a_round_that_misses_more_than_max_staleness_is_replaced_by_a_fresh_one(
        service: ServiceProcess, buffer_name: str) -> None:
    obs_space, action_space = SPACES["discrete actions"]
    buffer = open_buffer(service, buffer_name, obs_space, action_space, buffer_size=10_000,
                         num_batches=8, max_staleness=100)
    try:
        add_constant_steps(buffer, 10, 0.0)
        assert set(buffer.sample(32).rewards[:, 0].tolist()) == {0.0}
        # Within the bound the rounds drawn before these 100 steps are used...
        add_constant_steps(buffer, 100, 1.0)
        assert set(buffer.sample(32).rewards[:, 0].tolist()) == {0.0}
        assert buffer.fresh_draws == 1
        # ...past it, the next sample waits for a round that holds them.
        add_constant_steps(buffer, 1, 1.0)
        rewards = buffer.sample(32).rewards[:, 0]
        assert buffer.fresh_draws == 2
        assert (rewards == 1.0).float().mean() > 0.6  # 101 of the 111 held
    finally:
        buffer.close()


def test_max_staleness_0_samples_every_transition_added_so_far(
        service: ServiceProcess, buffer_name: str) -> None:
    obs_space, action_space = SPACES["discrete actions"]
    buffer = open_buffer(service, buffer_name, obs_space, action_space, max_staleness=0)
    try:
        for step in range(5):
            add_constant_steps(buffer, 1, float(step))
            assert set(buffer.sample(512).rewards[:, 0].tolist()) == set(map(float,
                                                                               range(step + 1)))
    finally:
        buffer.close()


def test_an_existing_buffer_is_resumed_and_one_with_another_schema_refused(
        service: ServiceProcess, buffer_name: str) -> None:
    obs_space, action_space = SPACES["discrete actions"]
    first = open_buffer(service, buffer_name, obs_space, action_space, buffer_size=8)
    add_constant_steps(first, 10, 0.0)
    first.close()
    again = open_buffer(service, buffer_name, obs_space, action_space, buffer_size=8)
    assert (again.full, again.pos, again.size()) == (True, 2, 8)
    again.close()
    with pytest.raises(Conflict):
        open_buffer(service, buffer_name, obs_space, SPACES["box actions"][1], buffer_size=8)


def test_dict_observations_and_optimize_memory_usage_are_refused_by_name(
        service: ServiceProcess, buffer_name: str) -> None:
    with pytest.raises(ValueError, match="Dict observation"):
        open_buffer(service, buffer_name, spaces.Dict({"x": BOX_OBS}), spaces.Discrete(2))
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        open_buffer(service, buffer_name, BOX_OBS, spaces.Discrete(2),
                    optimize_memory_usage=True, handle_timeout_termination=False)


def test_td3_trains_on_box_actions_through_the_service(
        service: ServiceProcess, buffer_name: str) -> None:
    model = TD3("MlpPolicy", "Pendulum-v1", learning_starts=100, batch_size=32,
                policy_kwargs={"net_arch": [32]}, seed=0, replay_buffer_class=ServiceReplayBuffer,
                replay_buffer_kwargs={"url": service.url, "buffer": buffer_name})
    model.learn(300)
    buffer = model.replay_buffer
    assert isinstance(buffer, ServiceReplayBuffer)
    assert model._n_updates == 200 and buffer.size() == 300
    buffer.close()
    with ReplayClient(service.url, buffer_name) as client:
        assert len(client) == 300


def test_qrdqn_from_sb3_contrib_trains_through_the_service(
        service: ServiceProcess, buffer_name: str) -> None:
    contrib = pytest.importorskip("sb3_contrib")
    model = contrib.QRDQN("MlpPolicy", "CartPole-v1", learning_starts=100, train_freq=50,
                          gradient_steps=10, batch_size=32, seed=0,
                          policy_kwargs={"net_arch": [32], "n_quantiles": 10},
                          replay_buffer_class=ServiceReplayBuffer,
                          replay_buffer_kwargs={"url": service.url, "buffer": buffer_name})
    model.learn(300)
    model.replay_buffer.close()
    assert model._n_updates == 40


@pytest.mark.slow
@pytest.mark.timeout(1_200)
def test_dqn_with_the_zoos_cartpole_hyperparameters_solves_cartpole_through_the_service(
        service: ServiceProcess, buffer_name: str) -> None:
    """Solved: a greedy evaluation of 10 episodes averages 475 or more. DQN's policy
    swings on CartPole (with SB3's own buffer and seed 0 the policy after 50k steps
    averages 19), so the zoo's way is kept: evaluate every 2,500 steps, and stop once
    solved."""
    solved = StopTrainingOnRewardThreshold(reward_threshold=475)
    evaluation = EvalCallback(Monitor(gym.make("CartPole-v1")), eval_freq=2_500,
                              n_eval_episodes=10, callback_on_new_best=solved, verbose=0)
    # rl-baselines3-zoo, hyperparams/dqn.yml, CartPole-v1.
    model = DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64,
                buffer_size=100_000, learning_starts=1_000, gamma=0.99,
                target_update_interval=10, train_freq=256, gradient_steps=128,
                exploration_fraction=0.16, exploration_final_eps=0.04,
                policy_kwargs={"net_arch": [256, 256]}, seed=0,
                replay_buffer_class=ServiceReplayBuffer,
                replay_buffer_kwargs={"url": service.url, "buffer": buffer_name})
    model.learn(50_000, callback=evaluation)
    model.replay_buffer.close()
    assert evaluation.best_mean_reward >= 475, evaluation.evaluations_results


@pytest.mark.slow
@pytest.mark.timeout(1_200)
def test_sac_reaches_minus_200_on_pendulum_within_20k_steps_through_the_service(
        service: ServiceProcess, buffer_name: str) -> None:
    model = SAC("MlpPolicy", "Pendulum-v1", seed=0, replay_buffer_class=ServiceReplayBuffer,
                replay_buffer_kwargs={"url": service.url, "buffer": buffer_name})
    model.learn(20_000)
    model.replay_buffer.close()
    mean_return, _ = evaluate_policy(model, Monitor(gym.make("Pendulum-v1")), n_eval_episodes=10,
                                     deterministic=True)
    assert mean_return >= -200
