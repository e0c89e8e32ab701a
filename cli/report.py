"""The summary printed at the end of `replay train` and `replay demo`."""

from __future__ import annotations

from replay_service.trainer.config import TrainConfig
from replay_service.trainer.reference import TrainResult
from replay_service.trainer.service_loop import ServiceTrainResult


def describe(result: TrainResult, config: TrainConfig, total_wall_s: float) -> str:
    verdict = "SOLVED" if result.solved else "not solved"
    final = result.evals[-1].mean_return if result.evals else float("nan")
    lines = [
        f"{verdict}: {result.env_steps} env steps, {result.gradient_steps} gradient steps, "
        f"{result.wall_time_s:.1f} s of training ({total_wall_s:.1f} s in all)",
        f"  final evaluation: mean return {final:.1f} over {config.eval_episodes} episodes "
        f"(best {result.best_mean_return:.1f} at {result.best_env_steps} steps)",
    ]
    if (not result.solved and config.max_minutes is not None
            and result.env_steps < config.total_env_steps):
        lines.append(f"  stopped by the time limit of {config.max_minutes:g} minutes")
    if result.confirm_mean_return is not None:
        lines.append(f"  checkpoint confirmation: mean return {result.confirm_mean_return:.1f} "
                     f"over {config.confirm_episodes} fresh greedy episodes")
    if isinstance(result, ServiceTrainResult):
        lines.append(f"  learner: {result.gradient_steps_per_s:.0f} gradient steps/s, "
                     f"{100 * result.sample_wait_share:.1f}% of the time waiting for batches")
        lines.append(f"  learning curve: {result.curve}")
    lines.append(f"  checkpoint: {result.checkpoint}")
    if config.log_dir is not None:
        lines.append(f"  TensorBoard: tensorboard --logdir {config.log_dir}")
    return "\n".join(lines)
