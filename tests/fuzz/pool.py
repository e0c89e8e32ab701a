"""The buffers the fuzzers aim at, what each held before, and the checks that a
request changed nothing it should not have.

- `fuzz-victim`: TRACKED_SCHEMA, seeded with known transitions (the ring wrapped
  and cut into several Redis strings), weights and episodes. Every store the
  fuzzers send it is invalid for its schema, so its transitions and counters must
  end exactly as seeded (total_sampled aside).
- `fuzz-cartpole`: CartPole's schema, so the OpenAPI examples' stores succeed and
  sampling has data to draw.
- `fuzz-open`: no schema, so the first store that gets through sets one.

After each request the pool compares the buffer it hit with its model: a rejected
request must leave counters, schema, weights and episodes exactly as they were; an
accepted one may only add (transitions, weights versions, episodes, a first schema).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

from replay_service.service.models import CARTPOLE_SCHEMA
from replay_service.wire.codec import (
    INDICES_TENSOR,
    SAFETENSORS,
    decode_safetensors,
    encode_safetensors,
)
from replay_service.wire.schema import BUFFER_NAME_PATTERN
from tests.fuzz.tally import TALLY
from tests.service.factories import TRACKED_SCHEMA, create, store_binary, tracked_columns

__all__ = ["CARTPOLE", "OPEN", "VICTIM", "Pool", "assert_well_formed"]

VICTIM, CARTPOLE, OPEN = "fuzz-victim", "fuzz-cartpole", "fuzz-open"
VICTIM_CAPACITY = 150
VICTIM_BATCHES = (range(0, 60), range(60, 120), range(120, 170))  # wraps: 170 > 150
VICTIM_WEIGHTS = encode_safetensors({"layers.0.weight": np.arange(12, dtype=np.float32)},
                                    {"epsilon": "0.05"})

TRACEBACK_SIGNS = ("Traceback (most recent call last)", 'File "/', "site-packages")


def assert_well_formed(status: int, content_type: str | None, content: bytes,
                       request: str) -> None:
    """No 5xx; every 4xx is the service's JSON error; no answer shows a stack trace."""
    text = content.decode("utf-8", errors="replace")
    assert status < 500, f"{request} -> {status}: {text[:500]}"
    for sign in TRACEBACK_SIGNS:
        assert sign not in text, f"{request} -> {status} shows a stack trace: {text[:500]}"
    if 400 <= status < 500:
        assert (content_type or "").split(";")[0].strip() == "application/json", (
            f"{request} -> {status} with Content-Type {content_type!r}: {text[:300]}")
        body = orjson.loads(content)
        assert isinstance(body, dict) and {"error", "message", "field"} <= body.keys(), (
            f"{request} -> {status}: not the error shape: {text[:300]}")
        assert isinstance(body["error"], str) and re.fullmatch(r"[a-z][a-z0-9_]*", body["error"]), (
            f"{request} -> {status}: error code {body['error']!r}")
        assert isinstance(body["message"], str) and body["message"], (
            f"{request} -> {status}: empty message")
        assert body["field"] is None or isinstance(body["field"], str), (
            f"{request} -> {status}: field {body['field']!r}")


@dataclass
class State:
    """What a request could change in a buffer (total_sampled aside: sampling counts)."""

    info: dict[str, Any] | None
    weights: tuple[int, str, str] | None = None
    episodes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Snapshot:
    info: dict[str, Any]
    transitions: dict[str, bytes]
    count: int


def _rows(snapshot: Snapshot) -> dict[int, bytes]:
    """Each slot's record, every field included."""
    columns = {key: np.frombuffer(value, dtype=np.uint8).reshape(snapshot.count, -1)
               for key, value in snapshot.transitions.items() if snapshot.count}
    slots = np.frombuffer(snapshot.transitions.get("slot", b""), dtype=np.int64)
    return {int(slot): b"".join(columns[key][i].tobytes() for key in sorted(columns))
            for i, slot in enumerate(slots)}


@dataclass(repr=False)
class Pool:
    http: httpx.Client
    model: dict[str, State] = field(default_factory=dict)
    seeded: Snapshot | None = None

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Pool({self.http.base_url}, {sorted(self.model)})"

    # --------------------------------------------------------------- seeding
    def seed(self) -> Pool:
        for name in (VICTIM, CARTPOLE, OPEN):
            self.http.delete(f"/buffers/{name}")
        create(self.http, VICTIM, VICTIM_CAPACITY, TRACKED_SCHEMA)
        for ids in VICTIM_BATCHES:
            assert store_binary(self.http, VICTIM, tracked_columns(ids, seed=ids.start)
                                ).status_code == 200
        published = self.http.put(f"/buffers/{VICTIM}/weights", content=VICTIM_WEIGHTS,
                                  headers={"content-type": SAFETENSORS})
        assert published.status_code == 200, published.text
        episodes = [{"return": float(i), "length": i, "source": "seed"} for i in range(3)]
        assert self.http.post(f"/buffers/{VICTIM}/episodes",
                              json={"episodes": episodes}).status_code == 200
        create(self.http, CARTPOLE, 16, CARTPOLE_SCHEMA)
        row = {"obs": [0.1, 0.2, 0.3, 0.4], "action": 1, "reward": 1.0,
               "next_obs": [0.2, 0.3, 0.4, 0.5], "done": False}
        assert self.http.post(f"/buffers/{CARTPOLE}/transitions",
                              json={"transitions": [row] * 4}).status_code == 200
        create(self.http, OPEN, 32)
        for name in (VICTIM, CARTPOLE, OPEN):
            self.model[name] = self.state(name, weights=True, episodes=True)
        self.seeded = self.snapshot(VICTIM)
        return self

    # ------------------------------------------------------------- targeting
    def retarget(self, name: object, method: str, fingerprint: bytes) -> str | None:
        """The pool buffer a request with this (valid) buffer name is sent to instead,
        chosen by its content so that a replayed example goes to the same place; None
        keeps the generated name (invalid names, DELETE, and one request in eight)."""
        if not isinstance(name, str) or not re.fullmatch(BUFFER_NAME_PATTERN, name):
            return None
        if method.upper() == "DELETE":
            return None
        choice = zlib.crc32(fingerprint) % 8
        if choice < 4:
            return VICTIM
        return {4: CARTPOLE, 5: CARTPOLE, 6: OPEN}.get(choice)

    # ---------------------------------------------------------------- states
    def state(self, name: str, *, weights: bool = False, episodes: bool = False) -> State:
        response = self.http.get(f"/buffers/{name}")
        info = None
        if response.status_code == 200:
            info = response.json()
            del info["total_sampled"]
        else:
            assert response.status_code == 404, response.text
        state = State(info)
        if weights:
            fetched = self.http.get(f"/buffers/{name}/weights")
            if fetched.status_code == 200:
                state.weights = (int(fetched.headers["x-replay-weights-version"]),
                                 fetched.headers["etag"],
                                 hashlib.blake2b(fetched.content, digest_size=16).hexdigest())
            else:
                assert fetched.status_code == 404, fetched.text
        if episodes:
            listed = self.http.get(f"/buffers/{name}/episodes", params={"limit": 10_000})
            if listed.status_code == 200:
                state.episodes = tuple(item["id"] for item in listed.json()["episodes"])
            else:
                assert listed.status_code == 404, listed.text
        TALLY.state_checks += 1
        return state

    def check(self, name: str, accepted: bool, request: str, *, weights: bool = False,
              episodes: bool = False, transitions: bool = False) -> None:
        """Compare the buffer with the model after a request to it, and update the model;
        with `transitions`, compare every transition of the victim too."""
        if transitions and name == VICTIM:
            self.assert_victim_intact(request)
        before = self.model[name]
        after = self.state(name, weights=weights, episodes=episodes)
        if not weights:
            after.weights = before.weights
        if not episodes:
            after.episodes = before.episodes
        if not accepted:
            assert after == before, f"{request} was refused but changed {name}: " \
                                    f"{before} -> {after}"
            return
        assert before.info is not None and after.info is not None, (request, before, after)
        for key in ("name", "capacity", "created_at"):
            assert after.info[key] == before.info[key], f"{request} changed {name}'s {key}"
        assert after.info["total_inserted"] >= before.info["total_inserted"], request
        if before.info["schema"] is not None:
            assert after.info["schema"] == before.info["schema"], f"{request} changed the schema"
        if before.weights is not None and after.weights != before.weights:
            assert after.weights is not None and after.weights[0] > before.weights[0], request
        if before.episodes is not None:
            assert after.episodes is not None, request
            assert after.episodes[: len(before.episodes)] == before.episodes, (
                f"{request} changed the episodes already recorded in {name}")
        self.model[name] = after

    # ------------------------------------------------------------- snapshots
    def snapshot(self, name: str) -> Snapshot:
        """Counters, schema and every transition, read back with a sample without
        replacement of the whole size, sorted by slot."""
        info = self.http.get(f"/buffers/{name}").json()
        del info["total_sampled"]
        size = info["size"]
        columns: dict[str, np.ndarray] = {}
        if size:
            response = self.http.get(f"/buffers/{name}/sample",
                                     params={"batch_size": size, "replace": False},
                                     headers={"accept": SAFETENSORS})
            assert response.status_code == 200, response.text
            columns = dict(decode_safetensors(response.content).columns)
            columns["slot"] = columns.pop(INDICES_TENSOR)
            order = np.argsort(columns["slot"], kind="stable")
            columns = {key: value[order] for key, value in columns.items()}
        return Snapshot(info, {key: value.tobytes() for key, value in columns.items()}, size)

    def assert_victim_intact(self, after: str = "the run") -> None:
        """The victim holds exactly the transitions and counters it was seeded with."""
        assert self.seeded is not None
        now = self.snapshot(VICTIM)
        before, held = _rows(self.seeded), _rows(now)
        lost = sum(1 for slot, record in before.items() if held.get(slot) != record)
        TALLY.transitions_checked += self.seeded.count
        TALLY.transitions_lost += lost
        assert lost == 0, f"after {after}: {lost} of {self.seeded.count} transitions lost " \
                          "or changed"
        assert now.info == self.seeded.info, f"after {after}: {self.seeded.info} -> {now.info}"
        assert now.transitions == self.seeded.transitions, after
