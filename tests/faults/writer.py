"""A writer process for the fault tests: stores transitions with unique ids through the
SDK and prints, as JSON, how many the service acknowledged.

    python -m tests.faults.writer URL BUFFER FIRST_ID COUNT BATCH
"""

from __future__ import annotations

import json
import sys

import numpy as np

from replay_service import ReplayClient, RetryPolicy


def main() -> None:
    url, buffer, first_id, count, batch = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    acknowledged = 0
    attempts_before = 0
    with ReplayClient(url, buffer, retry=RetryPolicy(max_wait_s=0.3, call_deadline_s=None,
                                                     close_deadline_s=120)) as client:
        for start in range(first_id, first_id + count, batch):
            ids = np.arange(start, min(start + batch, first_id + count), dtype=np.int64)
            result = client.store_batch({"id": ids, "obs": np.zeros((len(ids), 4), np.float32),
                                         "reward": ids.astype(np.float32)})
            acknowledged += result.stored
            attempts_before += 1
    print(json.dumps({"acknowledged": acknowledged, "batches": attempts_before}), flush=True)


if __name__ == "__main__":
    main()
