"""Transport faults on submit, the same for every HTTP adapter.

A garbled answer or no answer before the timeout means the request reached the vendor with an
unknown outcome: it may have started a job, so it must surface as ``ProviderAmbiguous``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from imagegate.errors import ProviderAmbiguous
from imagegate.providers.base import Provider, ProviderRequest, ProviderSettings
from imagegate.providers.comfyui import ComfyUIProvider
from imagegate.providers.fal import FalProvider
from imagegate.providers.gemini import GeminiProvider
from imagegate.providers.stability import StabilityProvider
from tests.fakes import comfyui, fal, gemini, stability
from tests.fakes.scripting import Fault
from tests.fakes.server import serve_app


@dataclass(frozen=True)
class Vendor:
    state: Callable[[], Any]
    adapter: type[Provider]
    key: str | None
    model: str
    submit_route: str  # the fake's script name for the route a submit lands on


VENDORS = {
    "fal": Vendor(fal.FalState, FalProvider, "fal-test-key", "fal-ai/flux/dev", "submit"),
    "stability": Vendor(
        stability.StabilityState,
        StabilityProvider,
        "sk-stability-test",
        "core",
        "generate",
    ),
    "gemini": Vendor(
        gemini.GeminiState,
        GeminiProvider,
        "gemini-test-key",
        "gemini-2.5-flash-image",
        "generate",
    ),
    "comfyui": Vendor(
        comfyui.ComfyState,
        ComfyUIProvider,
        None,
        "sd_xl_base_1.0.safetensors",
        "prompt",
    ),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Iterator[tuple[Vendor, Any, str]]:
    chosen = VENDORS[request.param]
    state = chosen.state()
    with serve_app(state.app()) as url:
        yield chosen, state, url


def adapter(http: httpx.AsyncClient, vendor: Vendor, url: str, timeout_s: float = 5.0) -> Provider:
    settings = ProviderSettings(
        name="v", kind="v", base_url=url, api_key=vendor.key, timeout_s=timeout_s
    )
    return vendor.adapter(settings, http)


async def test_garbled_answer_to_a_submit_is_ambiguous(
    http: httpx.AsyncClient, vendor: tuple[Vendor, Any, str]
) -> None:
    chosen, state, url = vendor
    state.script.add(chosen.submit_route, Fault(200, '{"truncated": '))

    with pytest.raises(ProviderAmbiguous):
        await adapter(http, chosen, url).submit(
            ProviderRequest(upstream_model=chosen.model, prompt="x")
        )


async def test_no_answer_before_the_timeout_is_ambiguous(
    http: httpx.AsyncClient, vendor: tuple[Vendor, Any, str]
) -> None:
    chosen, state, url = vendor
    state.script.add(chosen.submit_route, Fault(None, delay_s=1.0))

    with pytest.raises(ProviderAmbiguous):
        await adapter(http, chosen, url, timeout_s=0.2).submit(
            ProviderRequest(upstream_model=chosen.model, prompt="x")
        )
