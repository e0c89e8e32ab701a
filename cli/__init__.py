"""The `replay` command: one entry point, a subcommand per job."""

import typer

from replay_service.cli import bench, collect, demo, serve, snapshot, train

app = typer.Typer(name="replay", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False, rich_markup_mode=None,
                  help="Experience replay for deep RL: capped buffers in Redis behind HTTP.")
app.command("serve")(serve.serve)
app.command("collect")(collect.collect)
app.command("train")(train.train)
app.command("demo")(demo.demo)
app.command("export")(snapshot.export)
app.command("import")(snapshot.import_)
app.command("bench")(bench.bench)


def main() -> None:
    app()
