"""Entry point of the ``imagegate`` command: server commands and client commands on one app."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="imagegate",
    help="Self-hosted, OpenAI-compatible image-generation gateway.",
    no_args_is_help=True,
    add_completion=False,
)
