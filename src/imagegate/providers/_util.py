"""Small pieces the HTTP adapters share: timeouts, job URLs, ratios and inline image data."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from imagegate.errors import JobFailed, ProviderAmbiguous, ProviderError, ProviderUnavailable
from imagegate.providers.base import (
    GeneratedImage,
    JobStatus,
    Provider,
    ProviderRequest,
    ProviderSettings,
    decode_json,
    send,
)

ErrorFor = Callable[[httpx.Response], ProviderError]


def request_timeout(settings: ProviderSettings) -> httpx.Timeout:
    """The per-request timeout of one provider; connecting gets at most 10 s of it."""
    return httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s))


def _site(host: str) -> str:
    """The domain a vendor's regional hosts share (``api.us1.bfl.ai`` -> ``bfl.ai``)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        return ".".join(labels[-2:]) if len(labels) > 2 else host
    return host


def job_url(url: str, base_url: str) -> str:
    """Resolve a vendor-given poll or cancel URL and check it stays on the vendor's site.

    Vendors answer with the exact URL to poll (BFL: a regional host, imagegate: a relative
    path). We send our credentials there, so a URL on another site is refused: the job was
    accepted but cannot be followed, which is an ambiguous outcome, not a clean rejection.
    """
    absolute = urljoin(base_url.rstrip("/") + "/", url)
    target, base = urlsplit(absolute), urlsplit(base_url)
    same_origin = (target.scheme, target.netloc) == (base.scheme, base.netloc)
    host, base_host = target.hostname or "", base.hostname or ""
    same_site = target.scheme == "https" and _site(host) == _site(base_host) and "." in host
    if not (same_origin or same_site):
        raise ProviderAmbiguous(f"upstream job URL {absolute!r} is outside {base_url!r}")
    return absolute


def dimensions(request: ProviderRequest) -> tuple[int, int] | None:
    """(width, height) of a request: its explicit pixels, else its ``WxH`` size, else None."""
    if request.width and request.height:
        return request.width, request.height
    width, _, height = (request.size or "").partition("x")
    if width.isdigit() and height.isdigit():
        return int(width), int(height)
    return None


def reduced_ratio(width: int, height: int) -> str:
    """``1024x768`` -> ``"4:3"``: the aspect ratio vendors take instead of pixel sizes."""
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def decode_base64(value: str) -> bytes:
    """Bytes from base64 or a ``data:`` URI; a malformed payload is an ambiguous answer."""
    payload = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderAmbiguous("upstream returned undecodable image data") from exc


def as_dict(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object; anything else is a malformed answer."""
    if not isinstance(value, dict):
        raise ProviderAmbiguous(f"malformed {what} from upstream: expected a JSON object")
    return value


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The body as a JSON object; anything else is a malformed, ambiguous answer."""
    return as_dict(decode_json(response), what)


def polled_json(response: httpx.Response, what: str) -> dict[str, Any]:
    """A poll's JSON object; a garbled poll answer started nothing, so it is transient."""
    try:
        return json_object(response, what)
    except ProviderAmbiguous as exc:
        raise poll_error(exc) from exc


def image_from_url(url: str) -> GeneratedImage:
    """Vendors may inline a result as a ``data:`` URI where they usually link it."""
    if url.startswith("data:"):
        return GeneratedImage(data=decode_base64(url))
    return GeneratedImage(url=url)


def nearest_ratio(width: int, height: int, choices: tuple[str, ...]) -> str:
    """The vendor aspect ratio (``"16:9"``) closest to a requested pixel size."""

    def distance(choice: str) -> float:
        w, _, h = choice.partition(":")
        return abs(float(w) / float(h) - width / height)

    return min(choices, key=distance)


def poll_error(error: ProviderError) -> ProviderError:
    """A failed poll started nothing, so an "ambiguous" 502/504 there is merely transient."""
    if isinstance(error, ProviderAmbiguous):
        return ProviderUnavailable(error.message, error.retry_after, error.status)
    return error


async def create_request(
    provider: Provider,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    extra_wait_s: float = 0.0,
) -> httpx.Response:
    """POST a request that may start a paid job upstream: a lost answer is ambiguous.

    ``extra_wait_s`` lengthens the read timeout for vendors asked to hold the answer open.
    """
    timeout = request_timeout(provider.settings)
    if extra_wait_s and timeout.read is not None:
        timeout = httpx.Timeout(timeout.read + extra_wait_s, connect=timeout.connect)
    request = provider.http.build_request("POST", url, json=body, headers=headers, timeout=timeout)
    return await send(provider.http, request, starts_job=True)


async def job_request(
    provider: Provider, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    """Send a request about an existing job (poll, cancel): it can never start a new one."""
    request = provider.http.build_request(
        method, url, headers=headers, timeout=request_timeout(provider.settings)
    )
    return await send(provider.http, request, starts_job=False)


async def poll_job(
    provider: Provider,
    url: str,
    headers: dict[str, str],
    *,
    error: ErrorFor,
    parse: Callable[[dict[str, Any]], JobStatus],
) -> JobStatus:
    """Poll a job URL: 404 means the job is gone; any other failure is merely transient."""
    response = await job_request(provider, "GET", url, headers)
    if response.status_code == 404:
        raise JobFailed(f"{provider.kind} job not found or no longer available", status=404)
    if response.is_error:
        raise poll_error(error(response))
    try:
        return parse(as_dict(decode_json(response), "poll answer"))
    except ProviderAmbiguous as exc:  # a garbled poll answer: ask again later
        raise poll_error(exc) from exc


async def cancel_job(
    provider: Provider, method: str, url: str, headers: dict[str, str], *, error: ErrorFor
) -> None:
    """Ask the vendor to stop a job; a job that is gone already (404) needs nothing more."""
    response = await job_request(provider, method, url, headers)
    if response.is_error and response.status_code != 404:
        raise poll_error(error(response))
