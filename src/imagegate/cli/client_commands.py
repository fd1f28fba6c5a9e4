"""Client commands: talk to a running gateway through the SDK.

``generate``, ``status``, ``wait``, ``cancel``, ``tasks`` and ``models``. Each reads the
gateway's address and key from ``--base-url``/``--api-key`` or ``IMAGEGATE_BASE_URL``/
``IMAGEGATE_API_KEY``, prints results on stdout (``--json`` for scripts) and exits with a code
that says what went wrong (see ``client_output``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import RenderableType

from imagegate.cli.client_output import (
    EXIT_INTERRUPTED,
    Watch,
    describe,
    dump,
    emit_json,
    emit_lines,
    emit_table,
    reporting,
    stderr,
    stdout,
    task_table,
    when,
)
from imagegate.client import Client, ImagesResponse, Model, Task

BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="IMAGEGATE_BASE_URL",
        help="Gateway URL (default: http://127.0.0.1:8000).",
        show_default=False,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="IMAGEGATE_API_KEY", help="API key (sk-...).", show_default=False
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
TaskId = Annotated[str, typer.Argument(help="The task id (or its poll URL).", show_default=False)]
Timeout = Annotated[float, typer.Option(help="Give up waiting after this many seconds.")]
Interval = Annotated[
    float | None,
    typer.Option(
        help="Seconds between polls (default: the gateway's Retry-After, else 3).",
        show_default=False,
    ),
]
OutDir = Annotated[Path, typer.Option("--out", help="Directory to save the images in.")]


def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.", show_default=False)],
    model: Annotated[str | None, typer.Option(help="Model id (see `imagegate models`).")] = None,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT or auto.")] = None,
    n: Annotated[int | None, typer.Option("--n", "-n", help="Number of images.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed, for repeatable images.")] = None,
    out: OutDir = Path("."),
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Print the task and exit.")] = False,
    timeout: Timeout = 300.0,
    interval: Interval = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Create images, wait for them with a live display, and save them; prints the paths."""
    with _session(base_url, api_key, as_json) as client:
        created = client.images.generate(
            prompt, model=model, size=size, n=n, seed=seed, async_=True
        )
        if isinstance(created, Task) and no_wait:
            _show_created(created, as_json)
            return
        result = created
        if isinstance(created, Task):
            result = _watch(client, created, timeout, interval, as_json)
        _save(client, result, out, as_json)


def status(
    task_id: TaskId, base_url: BaseUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Show a task's state (exits 0 whatever the state; `wait` is for scripts that need it done)."""
    with _session(base_url, api_key, as_json) as client:
        task = client.tasks.get(task_id)
        _show(task, as_json, task_table(task))


def wait(
    task_id: TaskId,
    out: Annotated[Path | None, typer.Option("--out", help="Also save the images here.")] = None,
    timeout: Timeout = 300.0,
    interval: Interval = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Wait until a task finishes; prints its image URLs, or the saved paths with --out."""
    with _session(base_url, api_key, as_json) as client:
        task = _watch(client, task_id, timeout, interval, as_json)
        if out is not None:
            _save(client, task, out, as_json)
        elif as_json:
            emit_json(dump(task))
        else:
            emit_lines([item.url or "(inline image)" for item in task.data])


def cancel(
    task_id: TaskId, base_url: BaseUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Cancel a task that has not finished."""
    with _session(base_url, api_key, as_json) as client:
        task = client.tasks.cancel(task_id)
        _show(task, as_json, f"{task.id}: {describe(task)} ({task.error_code or 'cancelled'})")


def tasks(
    limit: Annotated[int, typer.Option(help="How many (1-100).")] = 20,
    status_filter: Annotated[
        str | None, typer.Option("--status", help="Only tasks in this status.")
    ] = None,
    after: Annotated[str | None, typer.Option(help="Cursor from a previous page.")] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """List this key's recent tasks, newest first."""
    with _session(base_url, api_key, as_json) as client:
        page = client.tasks.list(limit=limit, after=after, status=status_filter)
        if as_json:
            emit_json(dump(page))
            return
        rows = [
            [task.id, describe(task), when(task.created), task.model or "", _outcome(task)]
            for task in page.data
        ]
        emit_table(["id", "status", "created", "model", "result"], rows)
        if page.has_more and page.next_cursor:
            stderr.print(f"more: imagegate tasks --after {page.next_cursor}", highlight=False)


def models(base_url: BaseUrl = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """List the models the gateway serves."""
    with _session(base_url, api_key, as_json) as client:
        found = client.models.list()
        if as_json:
            emit_json(dump(found))
            return
        rows = [[model.id, model.owned_by or "", *_capabilities(model)] for model in found.data]
        emit_table(["id", "owned by", "mode", "max n", "description"], rows)


def _outcome(task: Task) -> str:
    return task.error or "" if task.status == "failed" else f"{len(task.data)} image(s)"


def _capabilities(model: Model) -> list[str]:
    """Mode, n limit and description from the gateway's ``imagegate`` object, where present."""
    info = model.imagegate or {}
    mode = "async only" if info.get("async_only") else "sync + async"
    return [mode, str(info.get("max_n", "")), str(info.get("description", ""))]


@contextmanager
def _session(base_url: str | None, api_key: str | None, as_json: bool) -> Iterator[Client]:
    """A client for one command, with SDK errors turned into messages and exit codes."""
    with reporting(as_json), Client(base_url=base_url, api_key=api_key) as client:
        yield client


def _show(value: BaseModel, as_json: bool, human: RenderableType) -> None:
    if as_json:
        emit_json(dump(value))
    else:
        stdout.print(human)


def _watch(
    client: Client, task: Task | str, timeout: float, interval: float | None, quiet: bool
) -> Task:
    """Wait with a live display; Ctrl-C stops watching, not the task, and says how to resume."""
    try:
        with Watch(enabled=not quiet) as watch:
            return client.tasks.wait(
                task, interval=interval, timeout=timeout, on_update=watch.update
            )
    except KeyboardInterrupt:
        task_id = task.id if isinstance(task, Task) else task
        stderr.print(f"Stopped watching; the task goes on: imagegate wait {task_id}")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _show_created(task: Task, as_json: bool) -> None:
    if as_json:
        emit_json(dump(task))
        return
    emit_lines([task.id])
    stderr.print(f"{describe(task)}; follow it with: imagegate wait {task.id}", highlight=False)


def _save(client: Client, result: ImagesResponse | Task, out: Path, as_json: bool) -> None:
    paths = client.images.save(result, out)
    if as_json:
        emit_json(dump(result, files=[str(path) for path in paths]))
    else:
        emit_lines(paths)


def register(app: typer.Typer) -> None:
    """Add the client commands to the ``imagegate`` app."""
    for command in (generate, status, wait, cancel, tasks, models):
        app.command()(command)
