"""imagegate: a self-hosted, OpenAI-compatible image-generation gateway.

The package's top level is the Python SDK (``imagegate.Client``, ``imagegate.AsyncClient`` and
their types and errors); the server lives in subpackages that this import never loads. The
SDK itself loads on first use, so a server or worker process, which imports ``imagegate.*``
modules but never the SDK, does not pay for it at start-up.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagegate.client import *  # noqa: F403
    from imagegate.client import __all__ as __all__

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if (name.startswith("__") and name != "__all__") or importlib.util.find_spec(
        f"{__name__}.{name}"
    ):
        # A subpackage not imported yet (``from imagegate import errors`` asks first).
        raise AttributeError(name)
    client = importlib.import_module("imagegate.client")
    if name != "__all__" and name not in client.__all__:
        raise AttributeError(f"module 'imagegate' has no attribute {name!r}")
    # Kept here, so later lookups of SDK names never come back to this function.
    globals().update({n: getattr(client, n) for n in client.__all__}, __all__=client.__all__)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted([*globals(), *importlib.import_module("imagegate.client").__all__])
