"""Every configuration example of docs/vendors.md is accepted by the catalogue loader."""

from __future__ import annotations

import pytest

from imagegate.catalog_file import parse_catalog
from tests.support.readme import ROOT, blocks

EXAMPLES = blocks(ROOT / "docs" / "vendors.md", "toml")
SECRETS = {"FAL_KEY": "k", "STABILITY_API_KEY": "k", "GEMINI_API_KEY": "k"}


def test_the_page_has_an_example_per_kind() -> None:
    kinds = {
        line.split('"')[1]
        for block in EXAMPLES
        for line in block.splitlines()
        if line.startswith("kind")
    }
    assert kinds == {"fal", "stability", "gemini", "comfyui", "diffusers"}


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_loads(example: str) -> None:
    catalog = parse_catalog(example, source="docs/vendors.md", environ=SECRETS)

    (name,) = [n for n in catalog.providers if n != "local"]
    (model,) = [m for m in catalog.models.values() if m.id != "local"]
    assert model.routes[0].provider == name
