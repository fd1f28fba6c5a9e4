"""The one interface every provider adapter implements.

A synchronous vendor answers ``submit`` with ``Completed`` (the images are in the response).
A submit-then-poll vendor answers ``Submitted`` with a small JSON-serialisable job reference;
the worker records that reference on the task *before* it starts polling, so a worker that
dies can be replaced by one that resumes ``poll`` on the same job instead of paying twice.

Adapters translate every vendor failure into ``imagegate.errors.ProviderError`` subclasses;
they never let ``httpx`` or JSON exceptions escape.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)

JobRef = dict[str, Any]


@dataclass(frozen=True)
class ProviderSettings:
    """One ``[providers.NAME]`` table of the configuration, resolved (secret read from env)."""

    name: str
    kind: str
    base_url: str | None = None
    api_key: str | None = None
    max_concurrency: int = 16
    timeout_s: float = 60.0
    allow_private_urls: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderRequest:
    """One call to a provider, already mapped from our request to what the route needs."""

    upstream_model: str
    prompt: str
    n: int = 1
    width: int | None = None
    height: int | None = None
    size: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    output_format: str = "png"
    output_compression: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    user: str | None = None
    # Stable per (task, call index): vendors that accept a client token (an Idempotency-Key
    # header, a client-chosen job id) receive it, making a resubmit after a crash harmless.
    idempotency_token: str = ""


@dataclass(frozen=True)
class GeneratedImage:
    """An image as the vendor returned it: inline bytes or a (short-lived) URL to fetch."""

    data: bytes | None = None
    url: str | None = None
    revised_prompt: str | None = None


@dataclass(frozen=True)
class Completed:
    images: list[GeneratedImage]


@dataclass(frozen=True)
class Submitted:
    job: JobRef


@dataclass(frozen=True)
class JobStatus:
    """A poll's answer for a job that has not failed (failures are raised)."""

    state: Literal["queued", "running", "succeeded"]
    images: list[GeneratedImage] = field(default_factory=list)
    progress: int | None = None
    queue_position: int | None = None


class Provider(ABC):
    """Base class of the adapters: one subclass per vendor, one file each."""

    kind: ClassVar[str]
    #: How many images one vendor call can return; larger ``n`` is split into repeated calls.
    max_n_per_call: ClassVar[int] = 1
    #: True when ``submit`` may answer ``Submitted`` (the worker then journals the submit).
    submits_jobs: ClassVar[bool] = False
    #: True when the vendor deduplicates submits by ``idempotency_token``: a submit whose
    #: outcome was lost in a crash may then be sent again to the same route.
    idempotent_submit: ClassVar[bool] = False
    #: True when ``cancel`` stops an upstream job.
    supports_cancel: ClassVar[bool] = False
    #: Suggested delay between polls of one job, in seconds.
    poll_interval_s: ClassVar[float] = 1.0
    #: True when the configuration must name a secret (``api_key_env``) for this kind.
    requires_api_key: ClassVar[bool] = False
    #: Vendor-specific configuration keys this adapter reads from ``settings.options``, with
    #: their types; the configuration loader rejects any other key.
    option_types: ClassVar[Mapping[str, type]] = {}

    def __init__(self, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    @property
    def name(self) -> str:
        return self.settings.name

    @abstractmethod
    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        """Start a generation; return the images or a job reference to poll."""

    async def poll(self, job: JobRef) -> JobStatus:
        """Check a submitted job; raise ``JobFailed`` (or a subclass) when it failed."""
        raise NotImplementedError(f"{self.kind} does not submit jobs")

    async def cancel(self, job: JobRef) -> None:
        """Ask the vendor to stop a job; only called when ``supports_cancel``."""
        raise NotImplementedError(f"{self.kind} cannot cancel jobs")

    async def aclose(self) -> None:
        """Release anything the adapter holds beyond its HTTP client."""
        return None


# --- helpers shared by the HTTP adapters -------------------------------------------------


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds, when it is a number."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_for_status(
    response: httpx.Response, message: str, *, moderation: bool = False
) -> ProviderError:
    """Translate a vendor's non-2xx answer to our error class by HTTP status.

    ``moderation`` marks a 4xx the vendor documents as a safety refusal.
    """
    status = response.status_code
    text = f"{message} (HTTP {status})"
    if moderation:
        return ContentPolicyViolation(text, status=status)
    if status in (401, 403):
        return ProviderAuthError(text, status=status)
    if status == 429:
        return ProviderRateLimited(text, retry_after=retry_after_seconds(response), status=status)
    if status in (502, 504):
        return ProviderAmbiguous(text, status=status)
    if status >= 500:
        return ProviderUnavailable(text, retry_after=retry_after_seconds(response), status=status)
    return ProviderRejected(text, status=status)


def decode_json(response: httpx.Response) -> Any:
    """The response body as JSON; a malformed body is an ambiguous answer, not a crash."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProviderAmbiguous(
            f"malformed JSON from upstream (HTTP {response.status_code})",
            status=response.status_code,
        ) from exc


async def send(
    http: httpx.AsyncClient, request: httpx.Request, *, starts_job: bool
) -> httpx.Response:
    """Send one request, translating transport failures.

    A connection that never opened started nothing (``ProviderUnavailable``); a failure after
    the request went out is ``ProviderAmbiguous`` when the request could have started a job.
    """
    try:
        return await http.send(request)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderUnavailable(f"cannot connect to upstream: {exc.__class__.__name__}") from exc
    except httpx.TransportError as exc:
        cls = ProviderAmbiguous if starts_job else ProviderUnavailable
        raise cls(f"upstream transport error: {exc.__class__.__name__}") from exc


__all__ = [
    "Completed",
    "GeneratedImage",
    "JobFailed",
    "JobRef",
    "JobStatus",
    "Provider",
    "ProviderRequest",
    "ProviderSettings",
    "Submitted",
    "decode_json",
    "error_for_status",
    "retry_after_seconds",
    "send",
]
