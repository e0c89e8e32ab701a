"""Logging for every `replay` subcommand: one format, and no line per HTTP request."""

import logging


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
