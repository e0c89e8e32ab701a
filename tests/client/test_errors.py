"""Failures come back as typed exceptions carrying the service's words, and no
pending transition is lost without an exception saying so."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from replay_service import (
    BufferNotFound,
    Conflict,
    ConnectionFailed,
    InvalidRequest,
    NotEnoughTransitions,
    OutboxFull,
    PayloadTooLarge,
    ReplayClient,
    ReplayError,
    RetryPolicy,
    Schema,
    ServiceUnavailable,
    TransitionsDropped,
)
from replay_service.service.redis_server import RedisServer, free_port
from tests.support import ServiceProcess

CARTPOLE = Schema.model_validate({"fields": {
    "obs": {"dtype": "float32", "shape": [4]}, "action": {"dtype": "int64"},
    "reward": {"dtype": "float32"}, "next_obs": {"dtype": "float32", "shape": [4]},
    "done": {"dtype": "bool"}}})


def row(i: int = 0) -> dict[str, Any]:
    return {"obs": [0.0, 1.0, 2.0, 3.0], "action": i % 2, "reward": float(i),
            "next_obs": [1.0, 2.0, 3.0, 4.0], "done": False}


def test_sample_missing_buffer_raises_buffer_not_found(service: ServiceProcess,
                                                       buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name) as B, pytest.raises(BufferNotFound) as caught:
        B.sample(8)
    error = caught.value
    assert (error.status, error.code, error.field) == (404, "buffer_not_found", "name")
    assert f"buffer '{buffer_name}' does not exist" in str(error)
    assert error.body is not None and error.body["message"] == error.message


def test_sample_more_than_held_raises_not_enough_transitions(service: ServiceProcess,
                                                             buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name) as B:
        B.store_batch({name: [value] * 3 for name, value in row().items()})
        with pytest.raises(NotEnoughTransitions) as caught:
            B.sample(10, replace=False)
    assert isinstance(caught.value, Conflict)
    assert caught.value.size == 3
    assert "holds 3 transitions; cannot sample 10 without replacement" in str(caught.value)


def test_sample_over_the_service_limit_raises_invalid_request(service: ServiceProcess,
                                                              buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name) as B:
        B.store_row(row())
        B.flush()
        with pytest.raises(InvalidRequest) as caught:
            B.sample(60_000)
    assert (caught.value.status, caught.value.field) == (422, "batch_size")
    assert "REPLAY_MAX_SAMPLE" in str(caught.value)


def test_store_batch_wrong_shape_raises_invalid_request_naming_the_field(
        service: ServiceProcess, buffer_name: str) -> None:
    columns = {name: np.array([value] * 2) for name, value in row().items()}
    columns["obs"] = np.zeros((2, 3))
    with ReplayClient(service.url, buffer_name, schema=CARTPOLE) as B:
        with pytest.raises(InvalidRequest) as caught:
            B.store_batch(columns)
    assert caught.value.field == "obs"
    assert "field 'obs': expected shape [4] per transition, got [3]" in str(caught.value)


def test_store_incompatible_value_fails_locally_naming_the_field(
        service: ServiceProcess, http: httpx.Client, buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, schema=CARTPOLE) as B:
        with pytest.raises(InvalidRequest) as caught:
            B.store(np.zeros(4), 0.5, 1.0, np.zeros(4), False)
        B.store(np.zeros(4), 1, 1.0, np.zeros(4), False)  # the client is still usable
    assert caught.value.field == "action"
    assert caught.value.body is None  # found before sending anything
    assert "field 'action': expected int64 values" in str(caught.value)
    assert http.get(f"/buffers/{buffer_name}/size").json()["total_inserted"] == 1


def test_store_incompatible_value_fails_locally_once_the_schema_is_learned(
        service: ServiceProcess, buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name) as B:
        B.store_row(row())
        B.flush()
        with pytest.raises(InvalidRequest) as caught:
            B.store_row({**row(), "done": 2})
        assert caught.value.field == "done"
        with pytest.raises(InvalidRequest) as caught:
            B.store_row({**row(), "speed": 1.0})
        assert caught.value.field == "speed"
        assert len(B) == 1


def test_store_too_large_raises_payload_too_large(service: ServiceProcess,
                                                  buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, capacity=10) as B, \
            pytest.raises(PayloadTooLarge) as caught:
        B.store_batch({"frame": np.zeros((2_000, 1_000), dtype=np.float32)})
    assert caught.value.status == 413
    assert "REPLAY_MAX_BODY_BYTES" in str(caught.value)


def test_background_flush_error_is_raised_by_the_next_call(
        service: ServiceProcess, http: httpx.Client, buffer_name: str) -> None:
    assert http.put(f"/buffers/{buffer_name}", json={"capacity": 10}).status_code == 201
    B = ReplayClient(service.url, buffer_name, capacity=20, flush_interval_s=0.1)
    for i in range(3):
        B.store_row(row(i))
    time.sleep(1.0)  # ten flush intervals: the background send has failed by now

    with pytest.raises(Conflict) as caught:
        B.store_row(row(3))
    assert "exists with capacity 10, not 20" in str(caught.value)
    assert caught.value.dropped == 3  # refused for good: the same rows would fail again
    assert B.flush() is None  # raised once; the row of the failed call was not kept
    B.store_row(row(4))
    with pytest.raises(Conflict):  # and raised again: the client never adopts the buffer
        B.flush()
    B.close()


def test_batches_wait_out_a_service_restart_and_arrive_once_in_order(
        redis_server: RedisServer, tmp_path: Path, buffer_name: str) -> None:
    own_service = ServiceProcess(redis_server.url, tmp_path).start()
    try:
        with ReplayClient(own_service.url, buffer_name, flush_every=2,
                          retry=RetryPolicy(max_wait_s=0.2)) as B:
            B.store_row(row(0))
            B.store_row(row(1))
            B.flush()
            own_service.stop()
            for i in range(2, 7):  # the service is down: batches wait in the outbox
                B.store_row(row(i))
            with pytest.raises(ReplayError, match="did not take the unsent transitions"):
                B.flush(timeout_s=0.5)
            assert B.unsent == 5  # nothing dropped
            own_service.start()
            B.flush()  # may find them sent already: the sender retries on its own
            assert B.unsent == 0
            batch = B.sample(7, replace=False)
    finally:
        own_service.stop()
    by_slot = dict(zip(batch.indices.tolist(), batch.reward.tolist(), strict=True))
    assert by_slot == {i: float(i) for i in range(7)}  # nothing lost, nothing twice, in order


def test_a_redis_outage_is_ridden_out_without_an_error(tmp_path: Path, buffer_name: str) -> None:
    with RedisServer(tmp_path / "redis", appendfsync="everysec") as redis_server:
        own_service = ServiceProcess(redis_server.url, tmp_path).start()
        try:
            with ReplayClient(own_service.url, buffer_name, flush_every=2,
                              retry=RetryPolicy(max_wait_s=0.2, call_deadline_s=1)) as B:
                B.store_row(row(0))
                B.store_row(row(1))
                B.flush()
                redis_server.stop()
                for i in range(2, 6):
                    B.store_row(row(i))
                with pytest.raises(ServiceUnavailable) as caught:
                    B.size()  # reads give up after the call deadline...
                assert (caught.value.status, caught.value.retry_after) == (503, 1.0)
                redis_server.start()
                B.flush()  # ...stores wait the outage out
                assert B.size().total_inserted == 6
        finally:
            own_service.stop()


def test_a_full_outbox_blocks_drops_or_raises_as_configured(
        buffer_name: str, caplog: pytest.LogCaptureFixture) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    quick = RetryPolicy(max_wait_s=0.1, call_deadline_s=0.5, close_deadline_s=0.5)
    raising = ReplayClient(down, buffer_name, flush_every=2, max_unsent=4, when_full="raise",
                           retry=quick)
    for i in range(4):
        raising.store_row(row(i))
    raising.store_row(row(4))
    with pytest.raises(OutboxFull, match="max_unsent=4"):
        raising.store_row(row(5))
    with pytest.raises(ReplayError, match="were not sent"):
        raising.close()

    dropping = ReplayClient(down, buffer_name, flush_every=2, max_unsent=4,
                            when_full="drop_oldest", retry=quick)
    dropping.store_row(row(0))
    dropping.store_row(row(1))
    # Until the sender has tried rows 0-1 once, it could still merge the next batch
    # into them (on a loaded machine it starts late): wait for its first failure.
    deadline = time.monotonic() + 10
    while not any("failed" in record.getMessage() for record in caplog.records):
        assert time.monotonic() < deadline, "the sender never tried"
        time.sleep(0.01)
    for i in range(2, 8):
        dropping.store_row(row(i))
    # Rows 0-1 are being sent; 2-3 made room for 4-5, which made room for 6-7.
    assert dropping.dropped == 4
    with pytest.raises(TransitionsDropped) as caught:
        dropping.flush(timeout_s=0.3)
    assert caught.value.dropped == 4
    with pytest.raises(ReplayError):
        dropping.close()


def test_unreachable_service_raises_connection_failed() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    B = ReplayClient(url, "cartpole", timeout_s=2,
                     retry=RetryPolicy(max_wait_s=0.1, call_deadline_s=0.5, close_deadline_s=0.5))
    with pytest.raises(ConnectionFailed) as caught:
        len(B)
    assert url in str(caught.value)
    B.store_row(row())
    with pytest.raises(ReplayError, match="1 transitions were not sent"):
        B.close()  # the flush on close failed: it says so


def test_context_manager_keeps_the_original_exception_when_the_flush_fails() -> None:
    with pytest.raises(KeyError) as caught:
        with ReplayClient(f"http://127.0.0.1:{free_port()}", "cartpole", timeout_s=2,
                          retry=RetryPolicy(close_deadline_s=0.5)) as B:
            B.store_row(row())
            raise KeyError("the environment crashed")
    assert any("flushing the replay client on exit failed" in note
               for note in caught.value.__notes__)


def test_closed_client_refuses_new_rows(service: ServiceProcess, buffer_name: str) -> None:
    B = ReplayClient(service.url, buffer_name)
    B.close()
    with pytest.raises(ReplayError, match="closed"):
        B.store_row(row())


def test_constructor_rejects_a_name_the_service_would_route_elsewhere() -> None:
    with pytest.raises(ValueError, match="buffer name 'a/sample'"):
        ReplayClient("http://127.0.0.1:1", "a/sample")
