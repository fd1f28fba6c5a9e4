"""Results: one row per measured setting, printed as a table and saved as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Options:
    """How a run is sized and where it finds its parts."""

    quick: bool
    root: Path
    postgres_url: str | None
    wrk: str | None

    @property
    def cores(self) -> int:
        return os.cpu_count() or 1

    def backends(self) -> list[str | None]:
        """Databases to measure on: SQLite (None), and PostgreSQL too outside the quick setting."""
        return [None, self.postgres_url] if self.postgres_url and not self.quick else [None]

    @property
    def processes(self) -> int:
        """Server processes: 2, as deployed on 2 cores; 1 in the quick setting (starts faster)."""
        return 1 if self.quick else 2


@dataclass(frozen=True)
class Row:
    """One measured setting: its figures, the in-run baseline, and the target."""

    benchmark: str
    setup: str
    result: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    figures: dict[str, Any] = field(default_factory=dict)


def procs(count: int) -> str:
    return f"{count} proc" if count == 1 else f"{count} procs"


def fmt_ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value * 1000:.0f} µs"


_COLUMNS = ("benchmark", "setup", "result", "baseline", "ratio", "target", "met")


def table(rows: list[Row]) -> str:
    """A Markdown table (readable in a terminal and pasteable into docs/benchmarks.md)."""
    cells = [
        [
            r.benchmark,
            r.setup,
            r.result,
            r.baseline,
            "" if r.ratio is None else f"{r.ratio:.3g}",
            r.target,
            {True: "yes", False: "NO", None: "-"}[r.met],
        ]
        for r in rows
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(_COLUMNS)]

    def line(values: list[str] | tuple[str, ...]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join([line(_COLUMNS), line(["-" * w for w in widths]), *(line(c) for c in cells)])


def save(rows: list[Row], path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
