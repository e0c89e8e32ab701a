"""TensorDicts as the service's flat columns, and back, keeping every dtype and shape.

A service field name is flat (`[A-Za-z][A-Za-z0-9_]*`), a TensorDict key may be
nested: ("next", "observation") travels as `next__observation`. The mapping must
be undone from the name alone, since a process that only samples never saw the
TensorDict; so a key part may not hold a double underscore, nor start or end
with one, and a key that breaks this is refused, named, before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase

from replay_service.wire.schema import FIELD_NAME_PATTERN, FieldSpec, Schema

__all__ = ["columns_of", "field_name", "schema_of", "tensordict_of"]

NESTING = "__"
_KEY_PART = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*$")
_FIELD_NAME = re.compile(FIELD_NAME_PATTERN)


def field_name(key: str | tuple[str, ...]) -> str:
    """The flat service field name of a (possibly nested) TensorDict key."""
    parts = (key,) if isinstance(key, str) else key
    for part in parts:
        if not _KEY_PART.match(part):
            raise ValueError(f"TensorDict key {key!r}: the part {part!r} must start with a "
                             "letter and hold letters, digits and single underscores between "
                             "them, so that its service field name can be read back")
    name = NESTING.join(parts)
    if not _FIELD_NAME.match(name):
        raise ValueError(f"TensorDict key {key!r} makes the field name '{name}', longer than "
                         "the service's 64 characters")
    return name


def _key_of(name: str) -> str | tuple[str, ...]:
    parts = tuple(name.split(NESTING))
    return parts[0] if len(parts) == 1 else parts


def columns_of(data: TensorDictBase) -> dict[str, np.ndarray]:
    """One numpy column per leaf, batch dimension first, dtypes as they are.

    The arrays share memory with the tensors where they can; the SDK copies what it
    keeps."""
    if data.batch_dims != 1:
        raise ValueError(f"the service keeps a batch of transitions, batch_size [N]; this "
                         f"TensorDict has batch_size {list(data.batch_size)}")
    columns = {}
    for key, value in data.items(include_nested=True, leaves_only=True):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"TensorDict key {key!r} holds {type(value).__name__}; the service "
                            "stores tensors only")
        try:
            columns[field_name(key)] = value.detach().cpu().numpy()
        except TypeError as error:  # numpy has no such dtype (bfloat16, ...)
            raise TypeError(f"TensorDict key {key!r}: the service cannot store "
                            f"{value.dtype}") from error
    return columns


def schema_of(columns: dict[str, np.ndarray]) -> Schema:
    """The schema that stores these columns exactly: their own dtypes and shapes."""
    fields = {}
    for name, column in columns.items():
        try:
            fields[name] = FieldSpec(dtype=str(column.dtype),  # type: ignore[arg-type]
                                     shape=list(column.shape[1:]))
        except ValueError as error:
            raise ValueError(f"field '{name}': the service cannot store {column.dtype} values "
                             f"of shape {list(column.shape[1:])}") from error
    return Schema(fields=fields)


def tensordict_of(columns: Mapping[str, np.ndarray], count: int) -> TensorDict:
    """Columns the service sent (a sampled Batch, say) as a TensorDict of batch_size
    [count], nested keys restored."""
    data = TensorDict({}, batch_size=[count])
    for name, column in columns.items():
        data.set(_key_of(name), torch.from_numpy(column))
    return data
