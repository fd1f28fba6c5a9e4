"""Server-side commands: ``serve``, ``worker`` and ``keys``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from imagegate import collector
from imagegate.config import Settings
from imagegate.keys import new_key, record_for

if TYPE_CHECKING:
    from imagegate.store.sql import SqlStore

# The server stack (uvicorn, SQLAlchemy, providers) is imported inside the commands that need
# it, so the client commands sharing this CLI start fast.

console = Console(stderr=True)
T = TypeVar("T")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where the SQLite database and files live.", show_default=False
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file of providers and models.", show_default=False),
]


def settings_from(data_dir: Path | None, config: Path | None) -> Settings:
    """Settings from the environment, with command-line options exported so that every
    process uvicorn starts sees the same values."""
    if data_dir is not None:
        os.environ["IMAGEGATE_DATA_DIR"] = str(data_dir)
    if config is not None:
        os.environ["IMAGEGATE_CONFIG"] = str(config)
    try:
        return Settings()
    except ValueError as exc:
        console.print(f"[red]Invalid configuration:[/red] {exc}")
        raise typer.Exit(2) from exc


async def _prepare(settings: Settings) -> str | None:
    """Migrate, store the environment's keys, and make a first key when none exists."""
    from imagegate.runtime import Runtime

    runtime = Runtime.build(settings)
    try:
        await runtime.start(run_worker=False)
        if await runtime.store.count_keys():
            return None
        key = new_key()
        await runtime.store.add_key(record_for(key, name="first key"))
        return key
    finally:
        await runtime.close()


def _checked(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main``; a configuration problem ends the command with its message, not a trace."""
    from imagegate.catalog_file import ConfigError

    try:
        return asyncio.run(main)
    except ConfigError as exc:
        # soft_wrap: one problem per line, whole, so it can be read and searched for.
        console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve the API only; run `imagegate worker` apart.")
    ] = False,
) -> None:
    """Run the API (and, unless --no-worker, an in-process worker)."""
    collector.pause()
    settings = settings_from(data_dir, config)
    _logging(settings)
    first_key = _checked(_prepare(settings))
    if first_key:
        console.print(
            "[bold green]Created the first API key[/bold green] (shown once, store it now):\n"
            f"  {first_key}"
        )
    import uvicorn

    from imagegate.api.protocol import HttpProtocol

    os.environ["IMAGEGATE_RUN_WORKER"] = "0" if no_worker else "1"
    console.print(f"imagegate listening on http://{host}:{port}  (playground at /)")
    uvicorn.run(
        "imagegate.api.factory:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=45,
        http=HttpProtocol,
    )


def worker(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Run task workers without the API; any number may share one database."""
    collector.pause()
    settings = settings_from(data_dir, config)
    _logging(settings)
    _checked(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from imagegate.runtime import Runtime

    runtime = Runtime.build(settings)
    await runtime.start(run_worker=False, serves_api=False)
    worker_ = runtime.start_worker()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker_.stop)
    logging.getLogger("imagegate").info("worker %s started", worker_.ctx.owner)
    await runtime.close_when_stopped()


keys_app = typer.Typer(help="Manage API keys (stored hashed).", no_args_is_help=True)


def _store(data_dir: Path | None) -> tuple[Settings, SqlStore]:
    from imagegate.store.sql import SqlStore

    settings = settings_from(data_dir, None)
    return settings, SqlStore(settings.resolved_database_url)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it once."""
    _, store = _store(data_dir)
    key = new_key()

    async def run() -> None:
        await store.start()
        await store.add_key(record_for(key, name=name))
        await store.close()

    asyncio.run(run())
    typer.echo(key)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List keys (prefix and id only; the keys themselves are not stored)."""
    _, store = _store(data_dir)

    async def run() -> None:
        await store.start()
        records = await store.list_keys()
        await store.close()
        table = Table("id", "prefix", "name", "created", "revoked")
        for r in records:
            revoked = (
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.revoked_at)) if r.revoked_at else ""
            )
            created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created_at))
            table.add_row(r.id, r.prefix + "…", r.name, created, revoked)
        Console().print(table)

    asyncio.run(run())


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`) or prefix.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key; requests with it fail within seconds."""
    _, store = _store(data_dir)

    async def run() -> int:
        await store.start()
        count = await store.revoke_key(key_id, time.time())
        await store.close()
        return count

    if not asyncio.run(run()):
        console.print(f"[red]No active key matches {key_id!r}.[/red]")
        raise typer.Exit(4)
    typer.echo(f"revoked {key_id}")
