"""How the client commands speak: results on stdout, progress and errors on stderr.

Exit codes are part of the CLI's interface (docs/cli.md lists them); scripts branch on them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from imagegate.client import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ImagegateClientError,
    NotFoundError,
    Task,
    TaskFailed,
    TaskTimeout,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_TASK_FAILED = 5
EXIT_TIMEOUT = 6
EXIT_UNREACHABLE = 7
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C

# First match wins, so subclasses come before their bases.
_EXIT_CODES: tuple[tuple[type[ImagegateClientError], int, str], ...] = (
    (AuthenticationError, EXIT_AUTH, "Check --api-key or IMAGEGATE_API_KEY."),
    (NotFoundError, EXIT_NOT_FOUND, ""),
    (BadRequestError, EXIT_USAGE, ""),
    (TaskFailed, EXIT_TASK_FAILED, ""),
    (TaskTimeout, EXIT_TIMEOUT, ""),
    (APIConnectionError, EXIT_UNREACHABLE, "Is the gateway running? Check --base-url."),
)

stderr = Console(stderr=True, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def exit_code_for(error: ImagegateClientError) -> tuple[int, str]:
    """The exit code of an SDK error and a hint on what to do about it."""
    for cls, code, hint in _EXIT_CODES:
        if isinstance(error, cls):
            if isinstance(error, TaskTimeout):
                hint = f"It may still finish: imagegate wait {error.task_id}"
            return code, hint
    return EXIT_ERROR, ""


@contextmanager
def reporting(as_json: bool) -> Iterator[None]:
    """Turn SDK errors into a clear message (or a JSON object) and a distinct exit code."""
    try:
        yield
    except ImagegateClientError as exc:
        code, hint = exit_code_for(exc)
        if as_json:
            emit_json(error_document(exc))
        stderr.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        if hint:
            stderr.print(hint, highlight=False)
        raise typer.Exit(code) from exc
    except OSError as exc:  # saving images: a full disk, a directory we may not write
        stderr.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_ERROR) from exc


def error_document(error: ImagegateClientError) -> dict[str, Any]:
    """A failure as JSON: failed tasks keep their full record, other errors their fields."""
    if isinstance(error, TaskFailed):
        return dump(error.task)
    message = getattr(error, "message", str(error))
    fields: dict[str, Any] = {"message": message, "type": type(error).__name__}
    for name in ("status_code", "code", "request_id", "task_id", "poll_url"):
        if hasattr(error, name):
            fields[name] = getattr(error, name)
    return {"error": fields}


def dump(model: BaseModel, **extra: Any) -> dict[str, Any]:
    return {**model.model_dump(mode="json"), **extra}


def emit_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def emit_lines(lines: Sequence[str | Path]) -> None:
    for line in lines:
        typer.echo(str(line))


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on a terminal; tab-separated lines without a header when piped (as gh does)."""
    if not stdout.is_terminal:
        emit_lines(["\t".join(row) for row in rows])
        return
    table = Table(Column(headers[0], no_wrap=True), *headers[1:], box=box.SIMPLE)
    for row in rows:
        table.add_row(*row)
    stdout.print(table)


def when(timestamp: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp)) if timestamp else ""


def describe(task: Task) -> str:
    """One line of state: status, progress and queue position where the gateway gives them."""
    parts = [task.status]
    if task.progress is not None:
        parts.append(f"{task.progress:g}%")
    if task.queue_position is not None:
        parts.append(f"queue position {task.queue_position}")
    return ", ".join(parts)


def task_table(task: Task) -> Table:
    table = Table(show_header=False, box=None)
    rows = [
        ("id", task.id),
        ("status", describe(task)),
        ("model", task.model or ""),
        ("created", when(task.created)),
        ("updated", when(task.updated)),
        ("poll url", task.poll_url or ""),
    ]
    if task.status == "failed":
        rows.append(("error", f"{task.error or ''} ({task.error_code or 'no code'})"))
    rows.extend((f"image {i}", item.url or "(inline)") for i, item in enumerate(task.data, 1))
    for name, value in rows:
        table.add_row(f"[bold]{name}[/bold]", value)
    return table


class Watch:
    """A live line while a task is polled; plain status lines when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.live = enabled and stderr.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not self.live,
        )
        self.bar = self.progress.add_task("waiting", total=None)
        self.last = ""

    def __enter__(self) -> Watch:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, task: Task) -> None:
        state = describe(task)
        if self.live:
            total = 100.0 if task.progress is not None else None
            self.progress.update(
                self.bar, description=f"{task.id} {state}", total=total, completed=task.progress
            )
        elif self.enabled and state != self.last:
            stderr.print(f"{task.id}: {state}", highlight=False)
        self.last = state
