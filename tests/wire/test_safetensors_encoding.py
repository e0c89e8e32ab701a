"""The service writes safetensors itself: whatever it writes, the safetensors library
reads back as the same tensors, dtype, shape and metadata."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors.numpy

from replay_service.wire.codec import encode_safetensors, read_safetensors_metadata
from replay_service.wire.schema import DType

DTYPES: list[DType] = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32",
                       "uint64", "int64", "float16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_schema_dtype_reads_back_exactly(dtype: str) -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2 if dtype == "bool" else 100, (5, 3, 2)).astype(dtype)
    tensors = {"plain": values, "strided": values[:, ::2], "swapped": values.astype(
        np.dtype(dtype).newbyteorder(">")), "scalar": values[0, 0, 0], "empty": values[:0]}
    read = safetensors.numpy.load(encode_safetensors(tensors))
    assert sorted(read) == sorted(tensors)
    for name, expected in tensors.items():
        assert read[name].dtype == np.dtype(dtype), name
        assert read[name].shape == np.shape(expected), name
        assert np.array_equal(read[name], expected), name


def test_metadata_and_the_data_start_as_the_format_says() -> None:
    body = encode_safetensors({"obs": np.ones((3, 4), np.float32)}, {"size": "3"})
    header_length = int.from_bytes(body[:8], "little")
    assert header_length % 8 == 0
    assert len(body) == 8 + header_length + 3 * 4 * 4
    assert read_safetensors_metadata(body) == {"size": "3"}
    assert safetensors.numpy.load(body)["obs"].sum() == 12


def test_a_dtype_safetensors_lacks_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'words'"):
        encode_safetensors({"words": np.array(["a", "b"])})
