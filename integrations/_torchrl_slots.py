"""Slots, TorchRL's indices, as the insertion numbers the service reads by.

A service buffer is a ring of `capacity` slots; transition n (counted from the
first ever inserted) lives in slot n % capacity until transition n + capacity
overwrites it. TorchRL addresses a storage by slot, the service reads ranges of
insertion numbers, so reading arbitrary slots means finding the number each holds
now and reading the runs those numbers make.
"""

from __future__ import annotations

import numpy as np

__all__ = ["held_insertions", "runs", "written_insertions"]


def held_insertions(slots: np.ndarray, total_inserted: int, capacity: int) -> np.ndarray:
    """The insertion number each slot holds, the newest ever written to it."""
    last = total_inserted - 1
    return last - (last - slots) % capacity


def written_insertions(first_slot: int, stored: int, total_inserted: int,
                       capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """The slots and insertion numbers of a store the service has just answered."""
    inserted = np.arange(total_inserted - stored, total_inserted, dtype=np.int64)
    return (first_slot + np.arange(stored, dtype=np.int64)) % capacity, inserted


def runs(numbers: np.ndarray, longest: int) -> list[tuple[int, int]]:
    """Sorted distinct `numbers` as (first, count) runs of consecutive ones, none over
    `longest`: one read each."""
    if not len(numbers):
        return []
    breaks = np.flatnonzero(np.diff(numbers) != 1) + 1
    found = []
    for run in np.split(numbers, breaks):
        for start in range(0, len(run), longest):
            found.append((int(run[start]), min(longest, len(run) - start)))
    return found
