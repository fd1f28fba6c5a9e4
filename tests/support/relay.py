"""A gateway whose model ``relay`` is served by submit-then-poll upstreams (fake task vendors).

Two OpenAI-compatible task upstreams, ``up-a`` (preferred) and ``up-b`` (fallback), each a
``tests.fakes.openai_tasks`` fake on its own loopback port. The fakes record every request,
so a test can count how often each upstream job was submitted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.openai_tasks import TasksState
from tests.fakes.server import serve_app

MODEL = "relay"
UPSTREAM_KEY_ENV = "RELAY_UPSTREAM_KEY"


@dataclass
class Relay:
    config: Path
    upstreams: dict[str, TasksState]

    @property
    def env(self) -> dict[str, str]:
        return {"IMAGEGATE_CONFIG": str(self.config), UPSTREAM_KEY_ENV: "test-key"}

    def submissions(self) -> Counter[str]:
        """Create requests per upstream job (``provider:idempotency token``)."""
        counts: Counter[str] = Counter()
        for name, state in self.upstreams.items():
            for headers in state.headers_seen:
                if token := headers.get("idempotency-key"):
                    counts[f"{name}:{token}"] += 1
        return counts

    def duplicates(self) -> int:
        """Submissions beyond the first of the same job to the same upstream (must be 0)."""
        return sum(n - 1 for n in self.submissions().values())


def _config(urls: dict[str, str]) -> str:
    lines = []
    for name, url in urls.items():
        lines += [
            f'[providers."{name}"]',
            'kind = "openai_compatible"',
            f'base_url = "{url}"',
            f'api_key_env = "{UPSTREAM_KEY_ENV}"',
            "allow_private_urls = true",  # the fake serves result files on loopback
            "max_concurrency = 1000",
            "",
        ]
    routes = ", ".join(
        f'{{ provider = "{name}", upstream_model = "fake-model", priority = {rank} }}'
        for rank, name in enumerate(urls)
    )
    lines += [f"[models.{MODEL}]", f"routes = [{routes}]", ""]
    return "\n".join(lines)


@contextmanager
def relay(tmp_path: Path, **knobs: object) -> Iterator[Relay]:
    """Start ``up-a`` and ``up-b`` and write the gateway configuration naming them."""
    upstreams = {"up-a": TasksState(polls_to_finish=1), "up-b": TasksState(polls_to_finish=1)}
    for state in upstreams.values():
        for knob, value in knobs.items():
            setattr(state, knob, value)
    with ExitStack() as stack:
        urls = {name: stack.enter_context(serve_app(s.app())) for name, s in upstreams.items()}
        config = tmp_path / "relay.toml"
        config.write_text(_config(urls))
        yield Relay(config, upstreams)
