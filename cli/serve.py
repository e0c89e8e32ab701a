"""`replay serve`: run the HTTP service, with a private Redis unless one is given."""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from replay_service.cli.logs import setup_logging
from replay_service.service.metrics import multiprocess_directory
from replay_service.service.redis_server import RedisServer
from replay_service.service.settings import Settings

log = logging.getLogger("replay.serve")


def serve(
    host: Annotated[str | None, typer.Option(
        envvar="REPLAY_HOST", help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(
        envvar="REPLAY_PORT", help="HTTP port (default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(
        envvar="REPLAY_WORKERS", help="uvicorn worker processes (default 1).")] = None,
    redis_url: Annotated[str | None, typer.Option(
        envvar="REPLAY_REDIS_URL", help="Redis to use; left out, a private redis-server is "
        "started with its data under --data-dir.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        envvar="REPLAY_DATA_DIR", help="Data directory of the private Redis "
        "(default ./replay-data).")] = None,
) -> None:
    """Serve the replay API (OpenAPI docs at /docs)."""
    overrides: dict[str, Any] = {key: value for key, value in {
        "host": host, "port": port, "workers": workers, "redis_url": redis_url,
        "data_dir": data_dir}.items() if value is not None}
    settings = Settings(**overrides)
    setup_logging()
    with ExitStack() as stack:
        if not settings.redis_url:
            private = stack.enter_context(RedisServer(settings.data_dir))
            overrides["redis_url"] = private.url
            settings = settings.model_copy(update={"redis_url": private.url})
            log.info("started a private Redis (%s) on %s, data in %s", private.executable,
                     private.url, private.data_dir)
        # The app (in each worker process) reads its settings from the environment, where
        # the user's REPLAY_* variables already are: add what the options changed.
        for name, value in overrides.items():
            os.environ[f"REPLAY_{name.upper()}"] = str(value)
        # uvicorn re-raises the SIGTERM it handled once it has shut down; make that an
        # exit that unwinds this stack, so the private Redis stops too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        stack.enter_context(multiprocess_directory(settings.workers))
        uvicorn.run("replay_service.service.app:create_server", factory=True, host=settings.host,
                    port=settings.port, workers=settings.workers, log_level="info",
                    access_log=settings.access_log)
