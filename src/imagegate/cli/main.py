"""Entry point of the ``imagegate`` command: server commands and client commands on one app."""

from __future__ import annotations

import typer

from imagegate.cli import client_commands, server

app = typer.Typer(
    name="imagegate",
    help="Self-hosted, OpenAI-compatible image-generation gateway.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(server.serve)
app.command()(server.worker)
app.add_typer(server.keys_app, name="keys")
client_commands.register(app)
