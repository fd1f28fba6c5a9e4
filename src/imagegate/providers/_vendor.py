"""Small translations the fal, Stability, Gemini and ComfyUI adapters share."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx

from imagegate.errors import ProviderAmbiguous, ProviderError, ProviderUnavailable
from imagegate.providers.base import GeneratedImage, ProviderSettings, decode_json


def timeout(settings: ProviderSettings) -> httpx.Timeout:
    """The per-request timeout of one provider; connecting gets at most 10 s of it."""
    return httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s))


def as_dict(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object; anything else is a malformed answer."""
    if not isinstance(value, dict):
        raise ProviderAmbiguous(f"malformed {what} from upstream: expected a JSON object")
    return value


def poll_error(error: ProviderError) -> ProviderError:
    """A failed poll started nothing, so an "ambiguous" 502/504 there is merely transient."""
    if isinstance(error, ProviderAmbiguous):
        return ProviderUnavailable(error.message, error.retry_after, error.status)
    return error


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The body as a JSON object; anything else is a malformed, ambiguous answer."""
    return as_dict(decode_json(response), what)


def polled_json(response: httpx.Response, what: str) -> dict[str, Any]:
    """A poll's JSON object; a garbled poll answer started nothing, so it is transient."""
    try:
        return json_object(response, what)
    except ProviderAmbiguous as exc:
        raise poll_error(exc) from exc


def decode_base64(value: str) -> bytes:
    """Bytes from base64 or a ``data:`` URI; a malformed payload is an ambiguous answer."""
    payload = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderAmbiguous("upstream returned undecodable image data") from exc


def image_from_url_or_data(url: str) -> GeneratedImage:
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
