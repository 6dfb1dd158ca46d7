"""The command line (typer 0.7 compatible: no Annotated parameters). Thin: parsing and printing."""

from __future__ import annotations

from typing import Optional

import typer

from after import __version__, cli_service

app = typer.Typer(
    name="after",
    help="After: run named jobs at a date, driven by task documents in CouchDB.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
)


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"after {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Optional[bool] = typer.Option(
        None, "--version", "-V", callback=show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """After: run named jobs at a date, driven by task documents in CouchDB."""


cli_service.register(app)


def main() -> None:
    app()
