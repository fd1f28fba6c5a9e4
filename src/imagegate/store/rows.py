"""Table rows to the engine's records and back: the one place that knows both shapes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from imagegate.engine.models import ImageRequest, StoredImage, Task, UpstreamState
from imagegate.engine.states import TaskStatus
from imagegate.store.base import ApiKeyRecord
from imagegate.store.schema import tasks

_JSON_COLUMNS = tuple(c.name for c in tasks.columns if isinstance(c.type, sa.JSON))


def task_of(row: Mapping[Any, Any]) -> Task:
    upstream = row["upstream"]
    return Task(
        id=row["id"],
        key_id=row["key_id"],
        model=row["model"],
        status=TaskStatus(row["status"]),
        request=ImageRequest.from_json(row["request"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deadline_at=row["deadline_at"],
        expires_at=row["expires_at"],
        run_after=row["run_after"],
        attempts=row["attempts"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        upstream=UpstreamState.from_json(upstream) if upstream else None,
        images=tuple(StoredImage.from_json(i) for i in row["images"] or ()),
        error=row["error"],
        error_code=row["error_code"],
        cancelled=bool(row["cancelled"]),
        cancel_requested=bool(row["cancel_requested"]),
        progress=row["progress"],
        queue_position=row["queue_position"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
    )


def task_of_raw(items: Iterable[tuple[str, Any]]) -> Task:
    """``task_of`` a row's (column, value) pairs as asyncpg returns them, without
    SQLAlchemy's result processing: its JSON columns are still text."""
    decoded = dict(items)
    for name in _JSON_COLUMNS:
        if isinstance(decoded[name], str):
            decoded[name] = json.loads(decoded[name])
    return task_of(decoded)


def task_values(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "key_id": task.key_id,
        "model": task.model,
        "status": task.status.value,
        "request": task.request.to_json(),
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "run_after": task.run_after,
        "deadline_at": task.deadline_at,
        "expires_at": task.expires_at,
        "attempts": task.attempts,
        "idempotency_key": task.idempotency_key,
        "request_hash": task.request_hash,
    }


def key_of(row: Mapping[Any, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(**dict(row))
