"""ASGI wrappers tests put around fake vendors to observe them from outside."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class ConcurrencyProbe:
    """Counts HTTP requests in flight through ``app`` and remembers the peak."""

    app: ASGIApp
    path_prefix: str = "/"
    in_flight: int = 0
    peak: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counted = scope["type"] == "http" and scope["path"].startswith(self.path_prefix)
        if counted:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            if counted:
                self.in_flight -= 1
