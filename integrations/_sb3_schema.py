"""The service buffer's schema for an SB3 algorithm's spaces, with SB3's own dtypes.

SB3's ReplayBuffer keeps observations in the observation space's dtype (so Atari
frames stay uint8), actions in the action space's dtype except float64, which it
narrows to float32, and rewards, dones and timeouts as float32. The service buffer
keeps the same, so a sample converts to the same tensors SB3's buffer would give.
"""

from __future__ import annotations

from typing import cast, get_args

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim, get_obs_shape

from replay_service.wire.schema import DType, FieldSpec, Schema

__all__ = ["SB3_FIELDS", "action_dtype", "schema_for_spaces"]

# One transition, in the order SB3's add() takes it; `timeout` is infos' "TimeLimit.truncated".
SB3_FIELDS = ("obs", "action", "reward", "next_obs", "done", "timeout")

_WIRE_DTYPES = frozenset(get_args(DType))


def action_dtype(action_space: spaces.Space[object]) -> np.dtype[np.generic]:
    """SB3's stored action dtype: the space's, float64 narrowed to float32 (SB3 GH#1572)."""
    dtype = np.dtype(action_space.dtype)
    return np.dtype(np.float32) if dtype == np.float64 else dtype


def schema_for_spaces(observation_space: spaces.Space[object],
                      action_space: spaces.Space[object]) -> Schema:
    """The schema of SB3 transitions for these spaces.

    Raises ValueError for what one flat record per transition cannot hold: Dict
    observations (SB3 gives those a DictReplayBuffer of its own) and dtypes the
    wire has no name for.
    """
    if isinstance(observation_space, spaces.Dict):
        raise ValueError("Dict observation spaces are not supported: SB3 stores them in a "
                         "DictReplayBuffer, which this buffer does not replace")
    obs_shape = cast(tuple[int, ...], get_obs_shape(observation_space))
    obs = FieldSpec(dtype=_wire_dtype(np.dtype(observation_space.dtype), "observation"),
                    shape=list(obs_shape))
    action = FieldSpec(dtype=_wire_dtype(action_dtype(action_space), "action"),
                       shape=[get_action_dim(action_space)])
    scalar = FieldSpec(dtype="float32")
    return Schema(fields={"obs": obs, "action": action, "reward": scalar, "next_obs": obs,
                          "done": scalar, "timeout": scalar})


def _wire_dtype(dtype: np.dtype[np.generic], what: str) -> DType:
    if dtype.name not in _WIRE_DTYPES:
        raise ValueError(f"the {what} space's dtype {dtype.name} has no wire dtype; "
                         f"the service stores {sorted(_WIRE_DTYPES)}")
    return cast(DType, dtype.name)
