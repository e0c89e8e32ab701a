"""The `replay` command: one entry point, a subcommand per job."""

import typer

from cli import collect, demo, serve

app = typer.Typer(name="replay", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False,
                  help="Experience replay for deep RL: capped buffers in Redis behind HTTP.")
app.command("serve")(serve.serve)
app.command("collect")(collect.collect)
app.command("demo")(demo.demo)


@app.callback()
def _group() -> None:
    """Keeps `replay <subcommand>` a group even while it has one subcommand."""


def main() -> None:
    app()
