"""`replay export` and `replay import`: a buffer to a file and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from replay_service.cli.logs import setup_logging

Url = Annotated[str, typer.Option(envvar="REPLAY_URL", help="The replay service.")]
Buffer = Annotated[str, typer.Option(envvar="REPLAY_BUFFER", help="The buffer.")]
ApiKey = Annotated[str | None, typer.Option(envvar="REPLAY_API_KEY", show_default=False,
                                            help="The service's API key, if it has one.")]


def export(
    file: Annotated[Path, typer.Argument(help="Where to write the export (safetensors).")],
    url: Url = "http://127.0.0.1:8000",
    buffer: Buffer = "cartpole",
    api_key: ApiKey = None,
) -> None:
    """Export a buffer's transitions (oldest first), schema and capacity to a file."""
    setup_logging()
    from replay_service.client.snapshot import export_buffer
    from replay_service.client.sync_client import ReplayClient

    with ReplayClient(url, buffer, api_key=api_key) as client:
        summary = export_buffer(client, file)
    typer.echo(f"exported {summary.transitions} transitions of '{buffer}' "
               f"(capacity {summary.capacity}) to {file}")


def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="A file written by `replay export`.")],
    url: Url = "http://127.0.0.1:8000",
    buffer: Buffer = "cartpole",
    capacity: Annotated[int | None, typer.Option(
        min=1, help="Capacity of the new buffer (default: the exported one's).")] = None,
    api_key: ApiKey = None,
) -> None:
    """Create a buffer from an export and store its transitions; safe to run again."""
    setup_logging()
    from replay_service.client.snapshot import import_buffer
    from replay_service.client.sync_client import ReplayClient

    with ReplayClient(url, buffer, api_key=api_key) as client:
        summary = import_buffer(client, file, capacity=capacity)
    typer.echo(f"imported {summary.transitions} transitions into '{buffer}' "
               f"(capacity {summary.capacity})")
