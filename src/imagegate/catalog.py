"""The model catalogue: which models exist, what each accepts, and which provider routes serve it.

Without a configuration file the catalogue holds the built-in ``local`` provider and model, so
a fresh gateway works with no network. ``imagegate.catalog_file`` reads the TOML form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imagegate.providers.base import ProviderSettings

# Optional request fields a model may accept; ``prompt``, ``n``, ``size``, ``response_format``,
# ``output_format``, ``user`` and ``async`` are accepted by every model.
OPTIONAL_PARAMETERS = frozenset(
    {
        "quality",
        "style",
        "background",
        "output_compression",
        "aspect_ratio",
        "resolution",
        "seed",
        "negative_prompt",
    }
)
OUTPUT_FORMATS = ("png", "jpeg", "webp")


@dataclass(frozen=True)
class Route:
    """One way to serve a model: a provider, the model's name there, and its rank."""

    provider: str
    upstream_model: str
    priority: int = 0
    weight: float = 1.0


@dataclass(frozen=True)
class ModelSpec:
    """What a model accepts and how it is served."""

    id: str
    routes: tuple[Route, ...]
    async_only: bool = False
    deadline_s: float | None = None
    sizes: tuple[str, ...] | None = None  # None: any WIDTHxHEIGHT within the side bounds
    min_side: int = 64
    max_side: int = 2048
    max_n: int = 10
    max_prompt_length: int = 4000
    parameters: frozenset[str] = OPTIONAL_PARAMETERS
    qualities: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
    backgrounds: tuple[str, ...] | None = None
    aspect_ratios: tuple[str, ...] | None = None
    resolutions: tuple[str, ...] | None = None
    output_formats: tuple[str, ...] = OUTPUT_FORMATS
    default_size: str = "1024x1024"
    owned_by: str = "imagegate"
    created: int = 1_735_689_600
    description: str = ""


@dataclass(frozen=True)
class Catalog:
    providers: dict[str, ProviderSettings]
    models: dict[str, ModelSpec]
    default_model: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)

    def model(self, model_id: str) -> ModelSpec | None:
        return self.models.get(self.aliases.get(model_id, model_id))


LOCAL_MODEL = "local"


def local_provider(latency: str = "0", failure_rate: float = 0.0) -> ProviderSettings:
    """The built-in provider, with the demo knobs from ``IMAGEGATE_LOCAL_*``."""
    return ProviderSettings(
        name="local",
        kind="local",
        max_concurrency=100_000,
        options={"latency": latency, "failure_rate": failure_rate},
    )


def default_catalog(latency: str = "0", failure_rate: float = 0.0) -> Catalog:
    """The embedded default: one local provider serving one model, no network needed."""
    provider = local_provider(latency, failure_rate)
    model = ModelSpec(
        id=LOCAL_MODEL,
        routes=(Route(provider="local", upstream_model="local"),),
        qualities=("low", "medium", "high", "auto", "standard", "hd"),
        styles=("vivid", "natural"),
        backgrounds=("auto", "opaque", "transparent"),
        description="Built-in renderer: deterministic pictures drawn from the prompt, no network.",
    )
    return Catalog(providers={"local": provider}, models={model.id: model}, default_model=model.id)
