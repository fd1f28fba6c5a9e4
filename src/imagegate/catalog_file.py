"""Load the TOML configuration of providers and models into a ``Catalog``.

The file has ``[providers.NAME]`` tables, ``[models."ID"]`` tables, an optional
``[aliases]`` table (alias = "model id") and optional top-level ``default_model`` and
``builtin_local`` keys. Every problem is reported with the file, the line and the dotted key
(``imagegate.toml:12: models.flux.max_n: expected an integer from 1 to 10``); all problems
are collected before failing, so one run shows them all. Secrets never sit in the file: a
provider names the environment variable holding its key (``api_key_env``).

The built-in ``local`` provider and model stay available beside the file's own, so a gateway
can always be smoke-tested without network, unless the file defines something named
``local`` itself (then the file owns that name) or sets ``builtin_local = false``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagegate.catalog import (
    LOCAL_MODEL,
    OPTIONAL_PARAMETERS,
    OUTPUT_FORMATS,
    Catalog,
    ModelSpec,
    Route,
    default_catalog,
)
from imagegate.providers.base import Provider, ProviderSettings
from imagegate.providers.registry import KINDS, provider_class

# A check returns the problem with a value, or None when the value is fine.
Check = Callable[[Any], str | None]


class ConfigError(ValueError):
    """The configuration file is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(low: int, high: int | None = None) -> Check:
    def check(value: Any) -> str | None:
        if _is_int(value) and value >= low and (high is None or value <= high):
            return None
        return (
            f"expected an integer from {low} to {high}" if high else f"expected an integer >= {low}"
        )

    return check


def _positive_number(value: Any) -> str | None:
    ok = (_is_int(value) or isinstance(value, float)) and value > 0
    return None if ok else "expected a number > 0"


def _of_type(expected: type) -> Check:
    if expected is int:
        return lambda value: None if _is_int(value) else "expected an integer"
    if expected is float:
        return lambda value: (
            None if _is_int(value) or isinstance(value, float) else "expected a number"
        )
    name = {str: "a string", bool: "true or false"}.get(expected, expected.__name__)
    return lambda value: None if isinstance(value, expected) else f"expected {name}"


def _url(value: Any) -> str | None:
    ok = isinstance(value, str) and re.match(r"^https?://[^\s/]+", value)
    return None if ok else "expected an http(s) URL"


def _strings(allowed: frozenset[str] | tuple[str, ...] | None = None) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return "expected a list of strings"
        if allowed is not None and (unknown := sorted(set(value) - set(allowed))):
            return f"unknown values {unknown}; expected some of {sorted(allowed)}"
        return None

    return check


_SIZE = re.compile(r"^(auto|[1-9][0-9]*x[1-9][0-9]*)$")


def _size(value: Any) -> str | None:
    return (
        None if isinstance(value, str) and _SIZE.match(value) else "expected auto or WIDTHxHEIGHT"
    )


def _sizes(value: Any) -> str | None:
    if problem := _strings()(value):
        return problem
    bad = [item for item in value if not _SIZE.match(item)]
    return f"expected auto or WIDTHxHEIGHT, got {bad}" if bad else None


PROVIDER_KEYS: dict[str, Check] = {
    "kind": _of_type(str),
    "base_url": _url,
    "api_key_env": _of_type(str),
    "max_concurrency": _integer(1),
    "timeout_s": _positive_number,
    "allow_private_urls": _of_type(bool),
}
MODEL_KEYS: dict[str, Check] = {
    "routes": _of_type(list),
    "async_only": _of_type(bool),
    "deadline_s": _positive_number,
    "sizes": _sizes,
    "min_side": _integer(1),
    "max_side": _integer(1),
    "max_n": _integer(1, 10),
    "max_prompt_length": _integer(1),
    "parameters": _strings(OPTIONAL_PARAMETERS),
    "qualities": _strings(),
    "styles": _strings(),
    "backgrounds": _strings(),
    "aspect_ratios": _strings(),
    "resolutions": _strings(),
    "output_formats": _strings(OUTPUT_FORMATS),
    "default_size": _size,
    "description": _of_type(str),
    "owned_by": _of_type(str),
}
ROUTE_KEYS: dict[str, Check] = {
    "provider": _of_type(str),
    "upstream_model": _of_type(str),
    "priority": _of_type(int),
    "weight": _positive_number,
}
_SETTINGS_KEYS = ("base_url", "max_concurrency", "timeout_s", "allow_private_urls")
TOP_KEYS = frozenset({"providers", "models", "aliases", "default_model", "builtin_local"})


# --- locating keys in the text (tomllib reports no line numbers) -------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(?:#.*)?$")
_PART = re.compile(r"\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)")


def _dotted(text: str) -> tuple[str, ...]:
    parts, position = [], 0
    while position < len(text):
        match = _PART.match(text, position)
        if not match or match.end() == position:
            return ()
        parts.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return tuple(parts)


@dataclass
class _Locator:
    """Finds the line of a table header or of a key inside a table."""

    lines: list[str]
    headers: dict[tuple[str, ...], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for number, line in enumerate(self.lines, start=1):
            if match := _HEADER.match(line):
                self.headers.setdefault(_dotted(match.group(1)), number)

    def line(self, table: tuple[str, ...], key: str | None = None) -> int:
        start = self.headers.get(table, 0) if table else 0
        if key is None:
            return start or 1
        key_pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        for number in range(start + 1, len(self.lines) + 1):
            text = self.lines[number - 1]
            if number > start + 1 and _HEADER.match(text) and table:
                break
            if key_pattern.match(text):
                return number
        return self.headers.get((*table, key), start or 1)


# --- building the catalogue ----------------------------------------------------------------


@dataclass
class _Reader:
    source: str
    locator: _Locator
    environ: Mapping[str, str]
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message)

    def problem(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        dotted = ".".join((*table, key) if key else table)
        line = self.locator.line(table, key)
        self.problems.append((line, f"{self.source}:{line}: {dotted}: {message}"))

    def checked(
        self,
        table: tuple[str, ...],
        data: dict[str, Any],
        keys: Mapping[str, Check],
        at: str | None = None,
    ) -> bool:
        """Report unknown keys and bad values of one table; True when it is clean.

        ``at`` reports against that key of ``table`` instead (an inline table in a list).
        """
        clean = True
        for key, value in data.items():
            check = keys.get(key)
            problem = check(value) if check else f"unknown key; expected one of {sorted(keys)}"
            if problem:
                self.problem(table, at or key, f"{key}: {problem}" if at else problem)
                clean = False
        return clean

    def provider(self, name: str, data: Any) -> ProviderSettings | None:
        table = ("providers", name)
        if not isinstance(data, dict):
            self.problem(table, None, "expected a table")
            return None
        cls = self.provider_class(table, data.get("kind"))
        if cls is None:
            return None
        option_checks = {key: _of_type(type_) for key, type_ in cls.option_types.items()}
        clean = self.checked(table, data, {**PROVIDER_KEYS, **option_checks})
        found, api_key = self.api_key(table, data.get("api_key_env"), cls)
        if not (clean and found):
            return None
        options = {key: value for key, value in data.items() if key in option_checks}
        common = {key: data[key] for key in _SETTINGS_KEYS if key in data}
        return ProviderSettings(name, cls.kind, api_key=api_key, options=options, **common)

    def provider_class(self, table: tuple[str, ...], kind: Any) -> type[Provider] | None:
        if kind not in KINDS:
            self.problem(table, "kind", f"expected one of {sorted(KINDS)}, got {kind!r}")
            return None
        try:
            return provider_class(kind)
        except ImportError:
            self.problem(table, "kind", f"provider kind {kind!r} is not available in this build")
            return None

    def api_key(
        self, table: tuple[str, ...], env: Any, cls: type[Provider]
    ) -> tuple[bool, str | None]:
        """(found, secret) for ``api_key_env``; found is False (after reporting) when missing."""
        if env is None:
            if cls.requires_api_key:
                self.problem(table, None, f"kind {cls.kind!r} needs api_key_env (a variable name)")
            return not cls.requires_api_key, None
        if not isinstance(env, str):
            return False, None  # already reported by the type check
        if not self.environ.get(env):
            self.problem(table, "api_key_env", f"environment variable {env} is not set")
            return False, None
        return True, self.environ[env]

    def model(self, model_id: str, data: Any, providers: set[str]) -> ModelSpec | None:
        table = ("models", model_id)
        if not isinstance(data, dict):
            self.problem(table, None, "expected a table")
            return None
        if "routes" not in data:
            self.problem(table, None, "needs routes = [{ provider = ..., upstream_model = ... }]")
            return None
        if not self.checked(table, data, MODEL_KEYS):
            return None
        routes = self.routes(table, model_id, data.pop("routes"), providers)
        if routes is None or not self.consistent(table, data):
            return None
        fields: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        if "parameters" in fields:
            fields["parameters"] = frozenset(fields["parameters"])
        return ModelSpec(id=model_id, routes=routes, **fields)

    def routes(
        self, table: tuple[str, ...], model_id: str, routes: list[Any], providers: set[str]
    ) -> tuple[Route, ...] | None:
        if not routes:
            self.problem(table, "routes", "expected at least one route")
            return None
        built = []
        for index, route in enumerate(routes, start=1):
            if not isinstance(route, dict):
                self.problem(table, "routes", f"route {index}: expected a table")
                return None
            if not self.checked(table, route, ROUTE_KEYS, at="routes"):
                return None
            if (provider := route.get("provider")) not in providers:
                self.problem(table, "routes", f"route {index}: unknown provider {provider!r}")
                return None
            built.append(Route(**{"upstream_model": model_id, **route}))
        return tuple(built)

    def consistent(self, table: tuple[str, ...], data: dict[str, Any]) -> bool:
        """Cross-key rules: the default size is allowed, and the side bounds are ordered."""
        sizes, default = data.get("sizes"), data.get("default_size")
        if sizes is not None and default is not None and default not in sizes:
            self.problem(table, "default_size", f"{default!r} is not one of sizes {sizes}")
            return False
        if data.get("min_side", 64) > data.get("max_side", 2048):
            self.problem(table, "min_side", "must not exceed max_side")
            return False
        return True


def parse_catalog(
    text: str,
    *,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    builtin: Catalog | None = None,
) -> Catalog:
    """The catalogue described by TOML ``text``; raises ``ConfigError`` naming every problem.

    ``builtin`` is the catalogue merged in beside the file's (``default_catalog()`` unless
    given, e.g. with the ``IMAGEGATE_LOCAL_*`` demo knobs applied).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: {exc}"]) from exc
    reader = _Reader(
        source, _Locator(text.splitlines()), os.environ if environ is None else environ
    )
    for key in sorted(set(data) - TOP_KEYS):
        reader.problem((), key, f"unknown key; expected one of {sorted(TOP_KEYS)}")
    catalog = _build(reader, data, builtin or default_catalog())
    if reader.problems:  # in file order, however they were found
        raise ConfigError([text for _, text in sorted(reader.problems)])
    return catalog


def _tables(reader: _Reader, data: dict[str, Any], key: str) -> dict[str, Any]:
    tables = data.get(key, {})
    if not isinstance(tables, dict):
        reader.problem((), key, "expected a table")
        return {}
    return tables


def _build(reader: _Reader, data: dict[str, Any], builtin: Catalog) -> Catalog:
    providers = {
        name: settings
        for name, table in _tables(reader, data, "providers").items()
        if (settings := reader.provider(name, table)) is not None
    }
    local = _builtin_local(reader, data, builtin)
    # Routes are checked against every provider name, valid or not, so one bad provider
    # table is reported once and not again for each model routed to it.
    names = set(_tables(reader, data, "providers")) | set(local.providers)
    models = {
        model_id: spec
        for model_id, table in _tables(reader, data, "models").items()
        if (spec := reader.model(model_id, table, names)) is not None
    }
    providers, models = {**local.providers, **providers}, {**local.models, **models}
    # Like routes, names are checked against every model table, valid or not.
    model_names = set(_tables(reader, data, "models")) | set(local.models)
    aliases = _tables(reader, data, "aliases")
    for alias, target in aliases.items():
        if target not in model_names:
            reader.problem(("aliases",), alias, f"unknown model {target!r}")
    # Without an explicit default, only a file that adds no models keeps ``local`` as default.
    fallback = LOCAL_MODEL if not data.get("models") and LOCAL_MODEL in models else None
    default_model = data.get("default_model", fallback)
    if default_model is not None and default_model not in model_names:
        reader.problem((), "default_model", f"unknown model {default_model!r}")
    return Catalog(providers, models, default_model=default_model, aliases=dict(aliases))


def _builtin_local(reader: _Reader, data: dict[str, Any], builtin: Catalog) -> Catalog:
    """The built-in local provider and model, or nothing when the file owns the name or opts out."""
    none = Catalog(providers={}, models={})
    enabled = data.get("builtin_local", True)
    if not isinstance(enabled, bool):
        reader.problem((), "builtin_local", "expected true or false")
        return none
    file_names = set(_tables(reader, data, "providers")) | set(_tables(reader, data, "models"))
    return builtin if enabled and LOCAL_MODEL not in file_names else none


def load_catalog(
    path: Path | None,
    environ: Mapping[str, str] | None = None,
    builtin: Catalog | None = None,
) -> Catalog:
    """The catalogue of the file at ``path`` (``Settings.config``), or the built-in default.

    ``builtin`` is the built-in local catalogue as this process configures it (simulated
    latency and failure rate); it defaults to the plain one.
    """
    builtin = builtin or default_catalog()
    if path is None:
        return builtin
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the configuration file: {exc.strerror}"]) from exc
    return parse_catalog(text, source=str(path), environ=environ, builtin=builtin)


__all__ = ["ConfigError", "load_catalog", "parse_catalog"]
