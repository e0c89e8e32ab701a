"""A TorchRL storage kept in the replay service, the service doing the sampling.

    from torchrl.data import TensorDictReplayBuffer
    from replay_service.integrations.torchrl import ServiceStorage

    storage = ServiceStorage(100_000, url="http://localhost:8000", buffer="cartpole")
    rb = TensorDictReplayBuffer(storage=storage, batch_size=256)
    rb.extend(collected)        # a TensorDict of batch_size [N]
    minibatch = rb.sample()     # the same keys, dtypes and shapes, and "index"

Prioritized replay, the service keeping the priorities:

    storage = ServiceStorage(100_000, url=..., buffer=..., prioritized=Prioritized(alpha=0.6))
    rb = TensorDictReplayBuffer(storage=storage, sampler=ServicePrioritizedSampler(beta=0.4),
                                writer=ServiceWriter(), priority_key="td_error")
    minibatch = rb.sample()     # with "priority_weight", the importance-sampling weights
    rb.update_tensordict_priority(minibatch)   # after the loss has set "td_error"

TorchRL splits a buffer into a writer (where data goes), a sampler (which indices
to draw) and a storage (set and get by index). The service decides where data
goes and draws and reads in one request, so the storage draws: TorchRL's
RandomSampler asks it for random indices (`_rand_given_ndim`), the storage asks
the service for a sample and keeps it, and the `get` of exactly those indices
that follows hands it over. Indices are the service's slots. Needs the `torchrl`
extra.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data.replay_buffers.samplers import PrioritizedSampler
from torchrl.data.replay_buffers.storages import Storage, StoreStorage
from torchrl.data.replay_buffers.writers import Writer

from replay_service.client.errors import BufferNotFound
from replay_service.client.sync_client import ReplayClient
from replay_service.integrations._torchrl_fields import columns_of, schema_of, tensordict_of
from replay_service.integrations._torchrl_slots import (
    held_insertions,
    runs,
    written_insertions,
)
from replay_service.wire.schema import Prioritized, Schema

__all__ = ["ServicePrioritizedSampler", "ServiceStorage", "ServiceWriter"]

# Transitions per read when `get` is given indices it did not draw itself; under the
# service's default REPLAY_MAX_SAMPLE.
READ_CHUNK = 8_192


# A StoreStorage because TorchRL picks a buffer's default collate function by the
# storage's type, and a StoreStorage's (the identity) is the one a storage that
# returns whole batches needs; none of StoreStorage's own code runs.
class ServiceStorage(StoreStorage):  # type: ignore[misc]
    """A TorchRL storage of `max_size` transitions, kept in the service buffer `buffer`.

    The first write declares the buffer's schema from the TensorDict itself, every
    leaf with its own dtype and per-transition shape, so what is sampled comes back
    bit for bit; nested keys are stored as `outer__inner`. A buffer that exists with
    another capacity or schema raises Conflict. `prioritized` creates a prioritized
    buffer (sample it through `ServicePrioritizedSampler` to get its weights).

    `len()` is the size the service reported with this storage's last store or
    sample (asked afresh while that is 0), so it counts other writers' transitions
    as of then without a request per call. `empty()` deletes the service buffer.
    One storage per process: it holds a connection and is not pickled. Call
    `close()` when done.
    """

    def __init__(self, max_size: int, *, url: str, buffer: str,
                 prioritized: Prioritized | None = None, api_key: str | None = None,
                 timeout_s: float = 30.0) -> None:
        Storage.__init__(self, max_size)
        self.buffer = buffer
        self.prioritized = prioritized
        self._client = ReplayClient(url, buffer, capacity=max_size, prioritized=prioritized,
                                    api_key=api_key, timeout_s=timeout_s)
        self._schema: Schema | None = None
        self._size = 0
        self._drawn: tuple[torch.Tensor, TensorDict] | None = None
        self._warned_cursor = False
        # Prioritized: the insertion number each slot held when this storage last wrote
        # or drew it (-1: never), which a priority update must name.
        self._seen = np.full(max_size, -1, np.int64) if prioritized is not None else None

    # What TorchRL's writers and samplers call.

    def set(self, cursor: Any, data: Any, *, set_cursor: bool = True) -> None:
        """Store `data` where the service puts it (its oldest slots, once full); warns
        once if that is not the `cursor` TorchRL's writer chose."""
        if not set_cursor:
            raise NotImplementedError("the service decides which slot a transition goes to "
                                      "(the oldest first); it cannot write at given indices")
        if isinstance(data, TensorDictBase) and not data.batch_dims:
            data = data.unsqueeze(0)
        slots = self.store(data)
        expected = torch.as_tensor(cursor).reshape(-1).cpu().numpy()
        if not self._warned_cursor and not np.array_equal(expected, slots):
            self._warned_cursor = True
            warnings.warn(
                f"buffer '{self.buffer}' stored these transitions at slots {slots[0]}.., not "
                f"at {expected[0]}.. where the writer put them (the buffer held transitions "
                "before, or has another writer), so the indices extend returned are not "
                "theirs; pass writer=ServiceWriter() to get the service's", RuntimeWarning,
                stacklevel=2)
        self._set_last_cursor(cursor)
        self._bump_mutation_revision()

    def get(self, index: Any) -> TensorDict:
        """The transitions at `index`: the sample just drawn when `index` is its indices,
        otherwise read from the service by slot (one request per run of slots)."""
        drawn, self._drawn = self._drawn, None
        if drawn is not None and drawn[0] is index:
            return drawn[1]
        return self._read(index)

    def __len__(self) -> int:
        if not self._size:
            try:
                self._size = self._client.size().size
            except BufferNotFound:
                return 0
        return self._size

    def _rand_given_ndim(self, batch_size: int) -> torch.Tensor:
        """TorchRL's RandomSampler asks for random indices here: the service draws them."""
        return self.draw(batch_size, None)[0]

    def contains(self, item: Any) -> Any:
        if isinstance(item, torch.Tensor):
            return (item >= 0) & (item < len(self))
        return 0 <= int(item) < len(self)

    def _empty(self) -> None:
        self._client.delete()
        self._schema, self._size, self._drawn = None, 0, None
        if self._seen is not None:
            self._seen.fill(-1)
        self._bump_mutation_revision()

    def state_dict(self) -> dict[str, Any]:
        """Nothing: the transitions and priorities live in the service buffer."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        return

    # What ServiceWriter and ServicePrioritizedSampler call.

    def store(self, data: TensorDictBase) -> np.ndarray:
        """Store a TensorDict of batch_size [N]; returns the slots it went to."""
        if not isinstance(data, TensorDictBase):
            raise TypeError(f"ServiceStorage stores TensorDicts, not {type(data).__name__}")
        columns = columns_of(data)
        schema = schema_of(columns)
        if self._schema is None:
            self._client.create(self.max_size, schema)
            self._schema = schema
        elif schema != self._schema:
            raise ValueError(f"buffer '{self.buffer}' holds {_describe(self._schema)}; this "
                             f"TensorDict has {_describe(schema)}")
        result = self._client.store_batch(columns)
        slots, inserted = written_insertions(result.first_slot, result.stored,
                                             result.total_inserted, result.capacity)
        if self._seen is not None:
            self._seen[slots] = inserted
        self._size = result.size
        return slots

    def draw(self, batch_size: int, beta: float | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Have the service sample `batch_size` transitions, kept for the `get` of the
        indices returned; also returns the importance-sampling weights (prioritized)."""
        batch = self._client.sample(batch_size, beta=beta if self.prioritized else None)
        if self._seen is not None and batch.inserted is not None:
            self._seen[batch.indices] = batch.inserted
        self._size = batch.size
        index = torch.from_numpy(batch.indices)
        self._drawn = (index, tensordict_of(batch, len(batch.indices)))
        weights = None if batch.weights is None else torch.from_numpy(batch.weights)
        return index, weights

    def update_priorities(self, slots: np.ndarray, priorities: np.ndarray) -> int:
        """New priorities for the transitions in `slots` as this storage last wrote or
        drew them; a slot it never saw is left as the service has it. Returns how many
        the service set (the others were overwritten since)."""
        if self._seen is None:
            raise ValueError(f"buffer '{self.buffer}' is not prioritized: pass "
                             "prioritized=Prioritized(...) to ServiceStorage")
        if len(slots) and (slots.min() < 0 or slots.max() >= self.max_size):
            raise IndexError(f"slots must lie in [0, {self.max_size}), got {slots.min()} to "
                             f"{slots.max()}")
        inserted = self._seen[slots]
        known = inserted >= 0
        if not known.any():
            return 0
        updated, _ = self._client.update_priorities(slots[known], inserted[known],
                                                    priorities[known])
        return updated

    def close(self) -> None:
        self._client.close()

    def _read(self, index: Any) -> TensorDict:
        counters = self._client.size()
        self._size = counters.size
        if isinstance(index, slice):
            slots = np.arange(counters.size)[index]
            shape: tuple[int, ...] = slots.shape
        else:
            slots = torch.as_tensor(index).cpu().numpy().astype(np.int64)
            shape = slots.shape
            slots = slots.reshape(-1)
        if len(slots) and (slots.min() < 0 or slots.max() >= counters.size):
            raise IndexError(f"buffer '{self.buffer}' holds slots 0 to {counters.size - 1}; "
                             f"got {slots.min()} to {slots.max()}")
        numbers = held_insertions(slots, counters.total_inserted, counters.capacity)
        distinct, position = np.unique(numbers, return_inverse=True)
        parts = [self._client.read(first, count) for first, count in runs(distinct, READ_CHUNK)]
        if not parts:
            raise IndexError("no index to read")
        columns = {name: np.concatenate([part[name] for part in parts])[position]
                   for name in parts[0]}
        return tensordict_of(columns, len(slots)).reshape(shape)

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a ServiceStorage holds a connection and is not pickled: make one per "
                        "process, naming the same buffer")

    def __repr__(self) -> str:
        return (f"ServiceStorage(buffer={self.buffer!r}, max_size={self.max_size}, "
                f"prioritized={self.prioritized is not None})")


class ServiceWriter(Writer):  # type: ignore[misc]
    """A writer that returns the slots the service stored transitions at.

    TorchRL's own writers count slots themselves, which matches the service only
    while this process is the buffer's sole writer and started it empty; priorities
    given with `extend` (TensorDictReplayBuffer's `priority_key`) then go to the
    right transitions either way.
    """

    def __init__(self) -> None:
        super().__init__()
        self._write_count = 0

    def add(self, data: TensorDictBase) -> int:
        slot = int(_service_storage(self._storage).store(data.unsqueeze(0))[0])
        self._write_count += 1
        return slot

    def extend(self, data: TensorDictBase) -> torch.Tensor:
        slots = _service_storage(self._storage).store(data)
        self._write_count += len(slots)
        return torch.from_numpy(slots)

    def _empty(self, empty_write_count: bool = True) -> None:
        if empty_write_count:
            self._write_count = 0

    def state_dict(self) -> dict[str, Any]:
        return {"write_count": self._write_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._write_count = int(state_dict["write_count"])

    def dumps(self, path: Any) -> None:
        """Nothing to write: where transitions go is the service's to remember."""

    def loads(self, path: Any) -> None:
        """Nothing to read back (see dumps)."""


# A PrioritizedSampler because TorchRL updates priorities from a sampled TensorDict
# (update_tensordict_priority) only for one; its priority trees are never built, the
# service keeps the priorities.
class ServicePrioritizedSampler(PrioritizedSampler):  # type: ignore[misc]
    """Prioritized sampling done by the service, for a `ServiceStorage(prioritized=...)`.

    The service draws transition i with probability p_i^alpha / sum_j p_j^alpha
    (alpha is the buffer's, fixed by `Prioritized` when it was created) and returns
    importance-sampling weights for exponent `beta`, which TorchRL puts in the sample
    as "priority_weight"; `beta` may be annealed (a ParameterScheduler sets it). New
    transitions get the highest priority seen, as in TorchRL. `update_priority` sends
    |TD error| + `eps` to the service for the transitions sampled or written through
    this storage; the service skips those overwritten since.
    """

    def __init__(self, beta: float = 0.4, eps: float = 1e-8, reduction: str = "max") -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1], not {beta}")
        self._beta = beta
        self._eps = eps
        # How TensorDictReplayBuffer reduces a transition's several priorities to one.
        self.reduction = reduction

    @property
    def default_priority(self) -> float:
        return 1.0

    def sample(self, storage: Storage, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        index, weights = _service_storage(storage).draw(batch_size, self._beta)
        if weights is None:
            raise ValueError("the service buffer is not prioritized: pass "
                             "prioritized=Prioritized(...) to ServiceStorage")
        return index, {"priority_weight": weights}

    def add(self, index: Any) -> None:
        """Nothing: the service gives new transitions their priority itself."""

    def extend(self, index: Any) -> None:
        """Nothing (see add)."""

    def update_priority(self, index: Any, priority: Any, *,
                        storage: Storage | None = None) -> None:
        slots = torch.as_tensor(index).reshape(-1).cpu().numpy().astype(np.int64)
        values = torch.as_tensor(priority).detach().cpu().to(torch.float64).reshape(-1)
        if values.numel() == 1:
            values = values.expand(len(slots))
        elif values.numel() != len(slots):
            raise ValueError(f"{values.numel()} priorities for {len(slots)} indices")
        _service_storage(storage).update_priorities(slots, values.numpy() + self._eps)

    def mark_update(self, index: Any, *, storage: Storage | None = None) -> None:
        return

    def _empty(self) -> None:
        return

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self._beta}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._beta = float(state_dict["beta"])

    def dumps(self, path: Any) -> None:
        """Nothing to write: the priorities live in the service buffer."""

    def loads(self, path: Any) -> None:
        """Nothing to read back (see dumps)."""

    def __repr__(self) -> str:
        return f"ServicePrioritizedSampler(beta={self._beta}, eps={self._eps})"


def _service_storage(storage: Storage | None) -> ServiceStorage:
    if not isinstance(storage, ServiceStorage):
        raise TypeError(f"this works with a ServiceStorage, not {type(storage).__name__}")
    return storage


def _describe(schema: Schema) -> str:
    return ", ".join(f"{name}: {spec.dtype}{spec.shape}" for name, spec in schema.fields.items())
