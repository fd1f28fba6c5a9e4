"""``Task.evolve`` gives what ``dataclasses.replace`` gives, and refuses a field Task lacks."""

from __future__ import annotations

import dataclasses

import pytest

from imagegate.engine.models import ImageRequest, StoredImage, Task
from imagegate.engine.states import TaskStatus

TASK = Task(
    id="task_1",
    key_id="key_1",
    model="m",
    status=TaskStatus.PROCESSING,
    request=ImageRequest(model="m", prompt="p"),
    created_at=1.0,
    updated_at=2.0,
    deadline_at=3.0,
    expires_at=4.0,
    lease_owner="w",
)


def test_evolve_matches_replace_and_leaves_the_original() -> None:
    changes = {
        "status": TaskStatus.COMPLETED,
        "images": (StoredImage(key="k", content_type="image/png", width=1, height=1),),
        "progress": 100,
    }
    evolved = TASK.evolve(**changes)
    assert evolved == dataclasses.replace(TASK, **changes)  # type: ignore[arg-type]
    assert hash(evolved.images) == hash(changes["images"])
    assert TASK.status is TaskStatus.PROCESSING and TASK.images == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.status = TaskStatus.FAILED  # type: ignore[misc]


def test_evolve_refuses_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="statuz"):
        TASK.evolve(statuz=TaskStatus.COMPLETED)
