"""`replay bench`: the service beside an in-process buffer and the raw Redis ceiling."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer


def bench(
    quick: Annotated[bool, typer.Option(
        "--quick", help="Short repetitions (0.15 s), no re-runs, concurrent clients at "
        "batch 256 only, JSON on the 1-worker service and CartPole only: about two minutes."
    )] = False,
    only: Annotated[list[str] | None, typer.Option(
        "--only", metavar="WORDS", help="Keep only these payloads (cartpole, atari, pong: "
        "real frames kept compressed, with ale-py), "
        "operations (store, sample, prioritized) or subjects (in-process, redis: every raw "
        "form, service, http, sdk, json, safetensors, or a column: raw-pipe, raw-lua, "
        "raw-hash, st-1w, json-2w...); repeat the option or separate with commas. Within a "
        "kind, any of them.")] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Also save every repetition's figures here.")] = None,
    seconds: Annotated[float | None, typer.Option(
        min=0.01, help="Length of one repetition (default 1, quick 0.15).")] = None,
    repeats: Annotated[int | None, typer.Option(
        min=1, help="Repetitions of each measurement; the median is quoted (default 3).")
    ] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="uvicorn workers of the second service (the first has one).")
    ] = max(2, min(4, os.cpu_count() or 2)),
    clients: Annotated[str, typer.Option(
        help="Concurrent client counts, comma-separated; each client is a process.")] = "1,4",
    scale: Annotated[float, typer.Option(
        min=1e-6, help="Multiply every buffer fill (10k and 1M CartPole, 20k Atari and Pong) by "
        "this.")
    ] = 1.0,
    profile: Annotated[Path | None, typer.Option(
        help="Record the service processes with py-spy into this folder, one file per "
        "service and section (summarise: python -m "
        "replay_service.benchmarks.suite.profiles FILE).")] = None,
) -> None:
    """Benchmark the service against an in-process buffer and the raw Redis ceiling (the
    fastest of three raw forms, per case); print the table (progress goes to stderr)."""
    # Imported here: the other commands (serve above all) must not need the suite.
    from replay_service.benchmarks.suite import Config, render, run, selectors

    words = frozenset(word.strip().lower() for item in only or [] for word in item.split(",")
                      if word.strip())
    known = frozenset().union(*selectors(workers).values())
    if words - known:
        raise typer.BadParameter(f"unknown {sorted(words - known)}; choose from "
                                 f"{sorted(known)}", param_hint="--only")
    try:
        counts = tuple(sorted({int(part) for part in clients.split(",") if part.strip()}))
    except ValueError:
        raise typer.BadParameter("a comma-separated list of numbers", param_hint="--clients"
                                 ) from None
    if not counts or min(counts) < 1:
        raise typer.BadParameter("at least one count, each 1 or more", param_hint="--clients")
    config = Config(seconds=seconds or (0.15 if quick else 1.0), repeats=repeats or 3,
                    extra_repeats=0 if quick else 2, workers=workers, clients=counts,
                    scale=scale, only=words, quick=quick)
    results = run(config, lambda line: typer.echo(line, err=True), profile)
    typer.echo(render(results), nl=False)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(results.to_json(), option=orjson.OPT_INDENT_2
                                           | orjson.OPT_SERIALIZE_NUMPY))
        typer.echo(f"figures saved to {json_path}", err=True)
    if any(measurement.error for measurement in results.measurements):
        raise typer.Exit(1)
