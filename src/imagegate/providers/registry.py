"""Provider kinds by name. Adapters are imported on first use, so an unused vendor costs nothing."""

from __future__ import annotations

import importlib

import httpx

from imagegate.providers.base import Provider, ProviderSettings

KINDS: dict[str, str] = {
    "local": "imagegate.providers.local:LocalProvider",
    "openai": "imagegate.providers.openai:OpenAIProvider",
    "openai_compatible": "imagegate.providers.openai_compatible:OpenAICompatibleProvider",
    "bfl": "imagegate.providers.bfl:BFLProvider",
    "replicate": "imagegate.providers.replicate:ReplicateProvider",
    "fal": "imagegate.providers.fal:FalProvider",
    "stability": "imagegate.providers.stability:StabilityProvider",
    "gemini": "imagegate.providers.gemini:GeminiProvider",
    "comfyui": "imagegate.providers.comfyui:ComfyUIProvider",
    "diffusers": "imagegate.providers.diffusers:DiffusersProvider",
}


def provider_class(kind: str) -> type[Provider]:
    try:
        module_name, _, attr = KINDS[kind].partition(":")
    except KeyError:
        raise ValueError(
            f"unknown provider kind {kind!r}; expected one of {sorted(KINDS)}"
        ) from None
    cls: type[Provider] = getattr(importlib.import_module(module_name), attr)
    return cls


def build_provider(settings: ProviderSettings, http: httpx.AsyncClient) -> Provider:
    return provider_class(settings.kind)(settings, http)
