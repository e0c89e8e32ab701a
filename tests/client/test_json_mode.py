"""binary=False speaks JSON on the wire and gives the same results as safetensors."""

from __future__ import annotations

import numpy as np

from replay_service import Batch, ReplayClient, Schema
from tests.service.factories import TRACKED_SCHEMA, tracked_columns
from tests.support import ServiceProcess


def in_slot_order(batch: Batch) -> dict[str, np.ndarray]:
    order = np.argsort(batch.indices)
    return {"indices": batch.indices[order], **{name: batch[name][order] for name in batch}}


def test_sample_in_json_gives_the_same_batch_as_binary(service: ServiceProcess,
                                                       buffer_name: str) -> None:
    schema = Schema.model_validate(TRACKED_SCHEMA)
    with ReplayClient(service.url, buffer_name, schema=schema, binary=False) as B:
        for i, row in enumerate(zip(*tracked_columns(range(20)).values(), strict=True)):
            B.store_row(dict(zip(TRACKED_SCHEMA["fields"], row, strict=True)))
            if i == 9:
                B.flush()
        B.flush()
        as_json = B.sample(20, replace=False)
    with ReplayClient(service.url, buffer_name) as B:
        as_binary = B.sample(20, replace=False)

    json_columns, binary_columns = in_slot_order(as_json), in_slot_order(as_binary)
    assert json_columns.keys() == binary_columns.keys()
    for name, column in binary_columns.items():
        assert json_columns[name].dtype == column.dtype, name
        np.testing.assert_array_equal(json_columns[name], column, err_msg=name)
    np.testing.assert_array_equal(binary_columns["id"], np.arange(20))
    assert (as_json.size, as_json.total_inserted) == (as_binary.size, as_binary.total_inserted)


def test_sample_in_json_learns_the_schema_from_the_service(service: ServiceProcess,
                                                           buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name) as B:
        B.store_batch(tracked_columns(range(5)))
    with ReplayClient(service.url, buffer_name, binary=False) as B:
        batch = B.sample(5)
    assert {name: str(batch[name].dtype) for name in batch} == {
        name: spec["dtype"] for name, spec in TRACKED_SCHEMA["fields"].items()}
