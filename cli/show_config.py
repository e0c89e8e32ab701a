"""`--show-config`: print the settings a command would run with, then exit.

The settings come from the environment's preset under the options given, so this
is how to see which preset a run takes and that an option overrides it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def show_config(config: DataclassInstance) -> NoReturn:
    """One `name = value` line per field (secrets, which dataclasses keep out of their
    repr, are left out), and exit 0."""
    for field in dataclasses.fields(config):
        if field.repr:
            typer.echo(f"{field.name} = {getattr(config, field.name)!r}")
    raise typer.Exit(0)
