"""Prioritized replay: draws follow priority^alpha, weights correct for it, learners
update priorities, and all of it survives overwrites. Checked against the analytic
distribution and against cpprb's prioritized buffer on the same priorities."""

from __future__ import annotations

from typing import Any

import cpprb
import httpx
import numpy as np
import pytest

from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from tests.stats import chi_square_rejects

SCHEMA = {"fields": {"id": {"dtype": "int64"}}}
PRIORITIES = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 0.25, 3.0, 1.5, 6.0, 0.75])


def create(http: httpx.Client, name: str, capacity: int, alpha: float,
           rate_limit: dict[str, Any] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"capacity": capacity, "schema": SCHEMA,
                            "prioritized": {"alpha": alpha}}
    if rate_limit:
        body["rate_limit"] = rate_limit
    return http.put(f"/buffers/{name}", json=body)


def store(http: httpx.Client, name: str, ids: range, priorities: np.ndarray | None = None
          ) -> httpx.Response:
    columns = {"id": np.asarray(ids, np.int64)}
    if priorities is not None:
        columns["_priority"] = np.asarray(priorities, np.float64)
    return http.post(f"/buffers/{name}/transitions", content=encode_safetensors(columns),
                     headers={"content-type": SAFETENSORS})


def sample(http: httpx.Client, name: str, batch_size: int, num_batches: int | None = None,
           **params: Any) -> dict[str, np.ndarray]:
    if num_batches is not None:
        params["num_batches"] = num_batches
    reply = http.get(f"/buffers/{name}/sample", headers={"accept": SAFETENSORS},
                     params={"batch_size": batch_size, **params})
    assert reply.status_code == 200, reply.text
    return decode_safetensors(reply.content).columns


def draws_of(http: httpx.Client, name: str, count: int) -> np.ndarray:
    return np.bincount(sample(http, name, 100, count // 100)["id"].ravel(), minlength=10)


@pytest.mark.parametrize("alpha", [1.0, 0.6, 0.0])
def test_draws_follow_priority_to_the_alpha(http: httpx.Client, buffer_name: str,
                                            alpha: float) -> None:
    assert create(http, buffer_name, 10, alpha).status_code == 201
    store(http, buffer_name, range(10), PRIORITIES)
    expected = PRIORITIES**alpha / (PRIORITIES**alpha).sum()
    counts = draws_of(http, buffer_name, 20_000)
    assert not chi_square_rejects(counts, expected), counts
    # the same test sees the difference from the uniform distribution
    if alpha:
        assert chi_square_rejects(counts, np.full(10, 0.1))


def test_draws_match_cpprb_on_the_same_priorities(http: httpx.Client,
                                                  buffer_name: str) -> None:
    create(http, buffer_name, 10, 0.6)
    store(http, buffer_name, range(10), PRIORITIES)
    reference = cpprb.PrioritizedReplayBuffer(10, {"id": {"dtype": np.int64}}, alpha=0.6)
    reference.add(id=np.arange(10), priorities=PRIORITIES)
    theirs = np.bincount(reference.sample(20_000, beta=0.4)["id"].ravel(), minlength=10)
    ours = draws_of(http, buffer_name, 20_000)
    # both fit the distribution cpprb's own counts imply (a two-sample check)
    assert not chi_square_rejects(ours, (theirs + ours) / (theirs + ours).sum())

    # importance weights: the same ratios as cpprb's (which scales by the global
    # smallest priority where this service scales by the largest weight of a batch)
    drawn = sample(http, buffer_name, 50, beta=0.4)
    theirs_sample = reference.sample(2_000, beta=0.4)
    their_weight = dict(zip(theirs_sample["indexes"].tolist(),
                            theirs_sample["weights"].tolist(), strict=True))
    ours_by_id = dict(zip(drawn["id"].tolist(), drawn["_weights"].tolist(), strict=True))
    common = sorted(set(ours_by_id) & set(their_weight))
    assert len(common) >= 2
    first = common[0]
    for other in common[1:]:
        assert ours_by_id[other] / ours_by_id[first] == pytest.approx(
            their_weight[other] / their_weight[first], rel=1e-4)  # float32 weights


def test_weights_are_n_times_probability_to_the_minus_beta_scaled_to_one(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10, 1.0)
    store(http, buffer_name, range(10), PRIORITIES)
    drawn = sample(http, buffer_name, 64, beta=0.5)
    probabilities = PRIORITIES / PRIORITIES.sum()
    raw = (10 * probabilities[drawn["id"]]) ** -0.5
    np.testing.assert_allclose(drawn["_weights"], raw / raw.max(), rtol=1e-5)
    assert drawn["_weights"].max() == 1.0


def test_new_transitions_get_the_highest_priority_seen(http: httpx.Client,
                                                       buffer_name: str) -> None:
    create(http, buffer_name, 10, 1.0)
    store(http, buffer_name, range(5), np.array([1.0, 1.0, 1.0, 1.0, 8.0]))
    store(http, buffer_name, range(5, 10))  # no priorities: each gets 8
    expected = np.array([1, 1, 1, 1, 8, 8, 8, 8, 8, 8]) / 52
    assert not chi_square_rejects(draws_of(http, buffer_name, 20_000), expected)


def test_overwritten_slots_take_their_new_transitions_priority(http: httpx.Client,
                                                               buffer_name: str) -> None:
    create(http, buffer_name, 10, 1.0)
    store(http, buffer_name, range(10), np.full(10, 1.0))
    store(http, buffer_name, range(10, 15), np.array([5.0, 5.0, 5.0, 5.0, 5.0]))  # slots 0-4
    counts = np.bincount(sample(http, buffer_name, 100, 200)["id"].ravel() - 5, minlength=10)
    expected = np.array([1, 1, 1, 1, 1, 5, 5, 5, 5, 5]) / 30  # ids 5..14
    assert not chi_square_rejects(counts, expected)


def test_priority_updates_take_effect_and_skip_overwritten_slots(http: httpx.Client,
                                                                  buffer_name: str) -> None:
    create(http, buffer_name, 10, 1.0)
    store(http, buffer_name, range(10), np.full(10, 1.0))
    drawn = sample(http, buffer_name, 10)
    pick = int(np.flatnonzero(drawn["_indices"] != 3)[0])
    slot, number = int(drawn["_indices"][pick]), int(drawn["_inserted"][pick])
    reply = http.post(f"/buffers/{buffer_name}/priorities", json={
        "indices": [slot, 3], "inserted": [number, 3], "priorities": [19.0, 0.0]})
    assert reply.json() == {"updated": 2, "skipped": 0}
    expected = np.ones(10)
    expected[slot], expected[3] = 19.0, 0.0
    counts = draws_of(http, buffer_name, 20_000)
    assert counts[3] == 0  # priority 0: never drawn
    drawable = expected > 0
    assert not chi_square_rejects(counts[drawable], expected[drawable] / expected.sum())

    store(http, buffer_name, range(10, 11))  # overwrites slot 0, the 0th insertion
    stale = http.post(f"/buffers/{buffer_name}/priorities", json={
        "indices": [0], "inserted": [0], "priorities": [100.0]})
    assert stale.json() == {"updated": 0, "skipped": 1}


def test_priority_updates_of_a_uniform_buffer_are_refused(http: httpx.Client,
                                                          buffer_name: str) -> None:
    http.put(f"/buffers/{buffer_name}", json={"capacity": 10, "schema": SCHEMA})
    store_reply = store(http, buffer_name, range(3), np.ones(3))
    assert store_reply.status_code == 422
    assert store_reply.json()["error"] == "not_prioritized"
    reply = http.post(f"/buffers/{buffer_name}/priorities", json={
        "indices": [0], "inserted": [0], "priorities": [1.0]})
    assert reply.status_code == 422


def test_bad_priorities_are_refused_and_change_nothing(http: httpx.Client,
                                                       buffer_name: str) -> None:
    create(http, buffer_name, 10, 1.0)
    store(http, buffer_name, range(10), PRIORITIES)
    for priorities in (np.array([-1.0]), np.array([np.nan])):
        reply = store(http, buffer_name, range(1), priorities)
        assert reply.status_code == 422 and reply.json()["field"] == "_priority"
    assert store(http, buffer_name, range(2), np.ones(3)).status_code == 422
    assert http.get(f"/buffers/{buffer_name}/size").json()["total_inserted"] == 10
    expected = PRIORITIES / PRIORITIES.sum()
    assert not chi_square_rejects(draws_of(http, buffer_name, 20_000), expected)


def test_a_large_ring_samples_and_updates_through_all_tree_levels(http: httpx.Client,
                                                                   buffer_name: str) -> None:
    create(http, buffer_name, 70_000, 1.0)  # five tree levels
    ids = range(70_000)
    priorities = np.ones(70_000)
    priorities[12_345] = 70_000.0  # as likely as all the others together
    for start in range(0, 70_000, 10_000):
        store(http, buffer_name, range(start, start + 10_000), priorities[start:start + 10_000])
    drawn = sample(http, buffer_name, 1_000)["id"]
    assert 400 < (drawn == 12_345).sum() < 600
    assert len(ids) == 70_000


def test_sampling_a_prioritized_buffer_without_replacement_has_its_own_code(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10, 0.6)
    store(http, buffer_name, range(10), PRIORITIES)
    reply = http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 2,
                                                               "replace": False})
    error = reply.json()
    assert (reply.status_code, error["error"], error["field"]) == (
        422, "replacement_required", "replace")
    assert "with replacement" in error["message"]
    assert http.get(f"/buffers/{buffer_name}/size").json()["total_sampled"] == 0
