"""The schema of a buffer: named fields, each a dtype and a per-transition shape.

Every transition of a buffer has the same fields, so the fields kept as they are
have the same layout in every transition (`Schema.record_dtype`): the service keeps
them as packed fixed-width records in Redis and reads any slot in O(1). Fields marked
compressed (`Schema.frame_dtype`) travel and rest as one zstd frame per transition,
of varying size, beside the record.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BUFFER_NAME_PATTERN", "Compression", "DQN_FIELDS", "DType", "FieldSpec",
           "FIELD_NAME_PATTERN", "Prioritized", "RateLimit", "Schema"]

DType = Literal[
    "bool",
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float16",
    "float32",
    "float64",
]

# How a field may be kept: zstd frames, one per transition (see wire/frames.py).
Compression = Literal["zstd"]

# Field names become safetensors tensor names and JSON keys; names starting with
# an underscore are kept for what the service adds itself (such as `_indices`).
FIELD_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
# Buffer names appear in URLs and, inside a hash tag, in Redis keys: no '/', '{', '}' or ':'.
BUFFER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
FieldName = Annotated[str, Field(pattern=FIELD_NAME_PATTERN)]
Dimension = Annotated[int, Field(ge=1, le=2**31 - 1)]

# The field names of a DQN transition, in the order `ReplayClient.store` takes them.
DQN_FIELDS = ("obs", "action", "reward", "next_obs", "done")


class FieldSpec(BaseModel):
    """One field: its dtype and the shape of a single transition's value."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    dtype: DType
    shape: Annotated[list[Dimension], Field(max_length=8)] = []
    allow_nonfinite: bool = Field(
        default=False,
        description="Accept NaN and infinities (float fields only). Off by default: a NaN "
        "reward stored once poisons every gradient step that samples it.",
    )

    compression: Compression | None = Field(
        default=None,
        # Left out when unset: plain fields read as they did before fields could be compressed.
        exclude_if=lambda value: value is None,
        description="Keep this field compressed, in Redis and on the wire: each "
        "transition's compressed fields together form one zstd frame. For image "
        "observations (Atari frames shrink about 150x); small fields gain nothing.",
    )

    @model_validator(mode="after")
    def _nonfinite_only_for_floats(self) -> FieldSpec:
        if self.allow_nonfinite and not self.dtype.startswith("float"):
            raise ValueError(f"allow_nonfinite applies to float fields only, not {self.dtype}")
        return self

    @property
    def numpy_dtype(self) -> np.dtype[np.generic]:
        return np.dtype(self.dtype).newbyteorder("<")

    @property
    def nbytes(self) -> int:
        return int(self.numpy_dtype.itemsize * np.prod(self.shape, dtype=np.int64))


class Schema(BaseModel):
    """Named fields in record order."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    fields: Annotated[dict[FieldName, FieldSpec], Field(min_length=1, max_length=64)]

    @cached_property
    def record_dtype(self) -> np.dtype[np.void]:
        """The fields kept uncompressed, as a packed (unaligned, little-endian) structured
        dtype: one fixed-width record per transition."""
        return _packed([name for name, spec in self.fields.items() if spec.compression is None],
                       self.fields)

    @cached_property
    def transition_dtype(self) -> np.dtype[np.void]:
        """Every field, packed, in schema order: one whole transition, uncompressed."""
        return _packed(list(self.fields), self.fields)

    @cached_property
    def frame_dtype(self) -> np.dtype[np.void] | None:
        """The compressed fields as the packed bytes one frame inflates to; None when no
        field is compressed."""
        names = [name for name, spec in self.fields.items() if spec.compression is not None]
        return _packed(names, self.fields) if names else None

    @property
    def record_size(self) -> int:
        return self.record_dtype.itemsize

    @property
    def frame_size(self) -> int:
        """What each transition's frame inflates to (0: no compressed fields)."""
        return self.frame_dtype.itemsize if self.frame_dtype is not None else 0

    @property
    def transition_size(self) -> int:
        """One transition's bytes, uncompressed."""
        return self.transition_dtype.itemsize

    def canonical_json(self) -> str:
        """The stored form: equal schemas give equal strings."""
        return self.model_dump_json()


def _packed(names: list[str], fields: dict[str, FieldSpec]) -> np.dtype[np.void]:
    return np.dtype([(name, fields[name].numpy_dtype, tuple(fields[name].shape))
                     for name in names])


class Prioritized(BaseModel):
    """Prioritized replay (Schaul et al. 2016): transition i is drawn with probability
    p_i^alpha / sum_j p_j^alpha. New transitions get the highest priority seen so far,
    unless the writer sends its own (field `_priority`)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6


class RateLimit(BaseModel):
    """Keeps a fast sampler from overfitting a slow writer (Reverb's SampleToInsertRatio).

    Sampling waits until the buffer holds `min_size` transitions, then while the
    transitions sampled would exceed samples_per_insert x (inserted - min_size) +
    tolerance.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    min_size: Annotated[int, Field(ge=0)] = 0
    samples_per_insert: Annotated[float, Field(gt=0.0)] | None = None
    tolerance: Annotated[float, Field(ge=0.0)] = 0.0
