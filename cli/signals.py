"""Ctrl-C and SIGTERM end every long-running `replay` command cleanly."""

import signal
import sys


def stop_cleanly_on_signals() -> None:
    """Ctrl-C raises KeyboardInterrupt even where the parent ignored SIGINT (as shells do
    for background jobs), and SIGTERM (docker stop, a supervisor) exits the same way, so
    `finally` blocks flush what is unsent and stop the child processes."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
