"""The DQN hyperparameters, defined once for the reference loop and the distributed trainer.

Defaults follow rl-baselines3-zoo's DQN entry for CartPole-v1 (which trains 5e4 env
steps with Stable-Baselines3), restated in the terms of a replay service: training
happens in rounds of `gradient_steps` minibatches, paced by a ratio of gradient steps
per inserted transition, because a distributed trainer sees transitions arrive rather
than counting env steps itself. Other environments start from their own zoo entries
(`replay_service.trainer.presets`), restated the same way.

No torch here: collectors import this (and `trainer.schedule`) without the learner.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one DQN run (`replay train --help` lists the common ones)."""

    env_id: str = "CartPole-v1"
    """The gymnasium environment to train on."""
    seed: int = 0
    """Seeds torch, numpy and the training environments; evaluations derive their own seeds."""
    total_env_steps: int = 100_000
    """Budget of env steps (transitions inserted); the run stops here if not solved earlier."""
    max_minutes: float | None = None
    """Wall-clock budget of training, from the trainer's start; None: none. Checked after
    each round, it ends the run as the step budget does (a last evaluation, the checkpoint),
    so a bounded run (Pong on a CPU) still reports. Schedules keep following
    total_env_steps: a time limit cuts a run short, it does not compress it."""
    num_envs: int = 1
    """Environments stepped together while collecting (SB3's zoo run uses one)."""

    learning_rate: float = 2.3e-3
    """Adam's step size."""
    buffer_size: int = 100_000
    """Replay capacity in transitions; the oldest are overwritten first."""
    shards: int | None = None
    """Rings the trainer's buffer is spread over (a Redis Cluster keeps them on different
    masters; each evicts its own oldest first); None: one for a new buffer, and whatever
    an existing one has."""
    batch_size: int = 64
    """Transitions per minibatch (per gradient step)."""
    gamma: float = 0.99
    """Discount factor of the TD target."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before the first gradient step."""
    gradient_steps: int = 128
    """Minibatches per training round: what one HTTP request fetches in the distributed trainer."""
    gradient_steps_per_transition: float = 0.5
    """Training ratio: gradient steps per inserted transition (the zoo's 128 per 256 env steps).
    A round of `gradient_steps` therefore follows every `env_steps_per_round` insertions."""
    target_sync_rounds: int = 1
    """Copy the online network into the target every this many rounds, before the round.
    SB3 counts its target_update_interval (10) in env steps and checks it during collection,
    when the online net does not change; with train_freq 256 the target therefore equals the
    online net at the start of every round of 128 gradient steps and stays fixed within it.
    Counting in rounds states that directly and does not depend on how collection is batched."""
    double_dqn: bool = True
    """Pick the next action with the online net and value it with the target (van Hasselt 2016).
    On by default: through the service (collectors a round behind the learner) it solved
    CartPole-v1 in 26k-47k env steps over 5 seeds, against 39k-89k without; in-process
    it cut the spread from 10k-76k to 22k-37k."""
    prioritized: bool = False
    """Prioritized replay (Schaul et al. 2016): sample in proportion to |TD error|^alpha,
    correct with importance-sampling weights, update priorities after each round."""
    per_alpha: float = 0.6
    """How much priorities shape sampling (0: uniform)."""
    per_beta_start: float = 0.4
    """Importance-sampling exponent at the start, annealed linearly to 1 at the budget."""
    per_epsilon: float = 1e-6
    """Added to |TD error| so that no transition's priority drops to zero."""
    n_step: int = 1
    """Returns over this many steps, computed by the collectors (1: plain transitions)."""
    max_grad_norm: float = 10.0
    """Clip the global gradient norm to this before each Adam step."""
    net_arch: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Q-network MLP."""

    exploration_initial_eps: float = 1.0
    """Epsilon of epsilon-greedy at env step 0."""
    exploration_final_eps: float = 0.04
    """Epsilon once the linear decay ends, kept until the end of training."""
    exploration_fraction: float = 0.16
    """Share of total_env_steps over which epsilon decays linearly (as in SB3)."""

    eval_interval: int = 2_048
    """Evaluate the greedy policy every this many env steps (checked after each round)."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation, run on their own, separately seeded environments."""
    solve_threshold: float = 475.0
    """Mean evaluation return at which the env counts as solved and training stops (475 for
    CartPole-v1; infinite: train to the budget)."""
    confirm_episodes: int = 100
    """Fresh greedy episodes that confirm a saved checkpoint after training."""

    device: str = "auto"
    """Torch device: "auto" picks CUDA when available, else CPU."""
    log_dir: str | None = "runs"
    """Folder for TensorBoard logs and checkpoints (one subfolder per run); None disables both."""

    def __post_init__(self) -> None:
        if self.gradient_steps < 1 or self.gradient_steps_per_transition <= 0:
            raise ValueError("gradient_steps and gradient_steps_per_transition must be positive")
        if self.env_steps_per_round < self.num_envs:
            raise ValueError(
                f"a round of {self.gradient_steps} gradient steps at "
                f"{self.gradient_steps_per_transition} per transition follows only "
                f"{self.env_steps_per_round} env steps, fewer than one step of {self.num_envs} "
                "environments; raise gradient_steps or lower the ratio"
            )
        if self.target_sync_rounds < 1:
            raise ValueError("target_sync_rounds must be at least 1")
        if not 0.0 < self.exploration_fraction <= 1.0:
            raise ValueError("exploration_fraction must be in (0, 1]")
        if self.batch_size > self.buffer_size:
            raise ValueError("batch_size cannot exceed buffer_size")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError("max_minutes must be positive (None: no time limit)")

    @property
    def env_steps_per_round(self) -> int:
        """Env steps (inserted transitions) between two training rounds: 256 by default."""
        return round(self.gradient_steps / self.gradient_steps_per_transition)

    def out_of_budget(self, env_steps: int, elapsed_s: float) -> bool:
        """Whether a run `elapsed_s` seconds and `env_steps` steps in has used its step
        budget or its time limit."""
        return env_steps >= self.total_env_steps or (
            self.max_minutes is not None and elapsed_s >= 60.0 * self.max_minutes)

    @property
    def exploration_steps(self) -> int:
        """Env steps over which epsilon decays."""
        return int(self.exploration_fraction * self.total_env_steps)
