"""imagegate: a self-hosted, OpenAI-compatible image-generation gateway.

The package's top level is the Python SDK (``imagegate.Client``, ``imagegate.AsyncClient`` and
their types and errors); the server lives in subpackages that this import never loads.
"""

from imagegate.client import *  # noqa: F403
from imagegate.client import __all__ as __all__

__version__ = "0.1.0"
