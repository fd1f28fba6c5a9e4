"""Route choice: priority tiers, weighted order within a tier, cooldown, concurrency limits.

The router only orders routes and keeps health; the worker tries them in that order and
decides (through the retry policy) whether a failure may move on to the next one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable

from imagegate.catalog import ModelSpec, Route

WINDOW = 20  # recent calls remembered per provider
MIN_SAMPLES = 5
FAILURE_RATIO = 0.5
COOLDOWN_S = 30.0


class _Health:
    def __init__(self) -> None:
        self.recent: deque[bool] = deque(maxlen=WINDOW)
        self.cool_until = 0.0


class Router:
    def __init__(
        self,
        limits: dict[str, int],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._slots = {name: asyncio.Semaphore(limit) for name, limit in limits.items()}
        self._health = {name: _Health() for name in limits}
        self._clock = clock
        self._rng = rng or random.Random()

    def plan(self, spec: ModelSpec, exclude: frozenset[str] = frozenset()) -> list[Route]:
        """Routes in the order to try: healthy ones by tier (weighted shuffle), cooling last."""
        routes = [r for r in spec.routes if r.provider not in exclude]
        if len(routes) < 2:
            return routes  # nothing to order (most models have one route)
        ordered: list[Route] = []
        for priority in sorted({r.priority for r in routes}):
            ordered.extend(self._weighted_order([r for r in routes if r.priority == priority]))
        healthy = [r for r in ordered if not self.cooling(r.provider)]
        return healthy + [r for r in ordered if self.cooling(r.provider)]

    def _weighted_order(self, routes: list[Route]) -> list[Route]:
        # Efraimidis-Spirakis: sort by u^(1/w), a weighted shuffle in one pass.
        keyed = [(self._rng.random() ** (1.0 / max(r.weight, 1e-9)), r) for r in routes]
        return [r for _, r in sorted(keyed, key=lambda kr: kr[0], reverse=True)]

    def cooling(self, provider: str) -> bool:
        return self._health[provider].cool_until > self._clock()

    def record(self, provider: str, ok: bool, *, unhealthy: bool = False) -> None:
        """Note a call's outcome; a failing majority or bad credentials start a cooldown."""
        health = self._health[provider]
        health.recent.append(ok)
        failures = health.recent.count(False)
        if unhealthy or (
            len(health.recent) >= MIN_SAMPLES and failures / len(health.recent) > FAILURE_RATIO
        ):
            health.cool_until = self._clock() + COOLDOWN_S
            health.recent.clear()

    def slot(self, provider: str) -> asyncio.Semaphore:
        """The provider's concurrency limit: excess work waits here instead of failing."""
        return self._slots[provider]
