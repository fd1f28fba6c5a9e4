"""Domain records of the task engine: what a client asked for and what a task holds.

Plain dataclasses with JSON round-trips, so the store persists them without knowing their
meaning and the API renders them without knowing the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from imagegate.engine.states import TaskStatus


@dataclass(frozen=True)
class ImageRequest:
    """A validated image-generation request (OpenAI Images field names)."""

    model: str
    prompt: str
    n: int = 1
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: str = "url"
    background: str | None = None
    output_format: str = "png"
    output_compression: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    user: str | None = None

    def to_json(self) -> dict[str, Any]:
        # Every field is a str or an int, so no deep copy (``asdict``) is needed.
        values = ((name, getattr(self, name)) for name in _REQUEST_FIELDS)
        return {name: value for name, value in values if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRequest:
        return cls(**{k: v for k, v in data.items() if k in _REQUEST_FIELDS})

    @property
    def dimensions(self) -> tuple[int, int] | None:
        """(width, height) when ``size`` is explicit, else None (``auto`` or unset)."""
        if not self.size or self.size == "auto":
            return None
        width, _, height = self.size.partition("x")
        return int(width), int(height)


_REQUEST_FIELDS = tuple(f.name for f in fields(ImageRequest))


@dataclass(frozen=True)
class StoredImage:
    """An image held in the gateway's storage; ``key`` never leaves the server unsigned."""

    key: str
    content_type: str
    width: int
    height: int
    revised_prompt: str | None = None

    def to_json(self) -> dict[str, Any]:
        # By hand: ``asdict`` deep-copies field by field, a measurable share of a completion.
        return {
            "key": self.key,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "revised_prompt": self.revised_prompt,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredImage:
        return cls(**data)


@dataclass(frozen=True)
class UpstreamState:
    """Private progress of a task at its provider: which route took it and the jobs it holds.

    ``jobs[i]`` belongs to the i-th provider call of the task (vendors without ``n`` get one
    call per image). A slot is ``None`` before submission, ``{"submitting": True}`` while a
    submit is in flight (an ambiguous outcome if we find it after a crash) and the vendor's job
    reference once accepted. Never rendered in a public response.
    """

    route: str
    jobs: list[dict[str, Any] | None] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpstreamState:
        return cls(
            route=data["route"], jobs=list(data.get("jobs", [])), tried=list(data.get("tried", []))
        )

    def with_job(self, index: int, job: dict[str, Any] | None) -> UpstreamState:
        jobs = list(self.jobs)
        jobs[index] = job
        return replace(self, jobs=jobs)


@dataclass(frozen=True)
class Task:
    """One image-generation task as the engine sees it."""

    id: str
    key_id: str
    model: str
    status: TaskStatus
    request: ImageRequest
    created_at: float
    updated_at: float
    deadline_at: float
    expires_at: float
    run_after: float = 0.0
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    upstream: UpstreamState | None = None
    images: tuple[StoredImage, ...] = ()
    error: str | None = None
    error_code: str | None = None
    cancelled: bool = False
    cancel_requested: bool = False
    progress: int | None = None
    queue_position: int | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def evolve(self, **changes: Any) -> Task:
        """``dataclasses.replace`` in a tenth of its time (a synchronous request made two):
        the fields are copied as they are, with no ``__init__`` to run, for there is nothing
        in it to run but the fields' assignment."""
        unknown = changes.keys() - self.__dataclass_fields__.keys()
        if unknown:
            raise TypeError(f"Task has no field {sorted(unknown)[0]!r}")
        task = object.__new__(Task)
        values = task.__dict__
        values.update(self.__dict__)
        values.update(changes)
        return task
