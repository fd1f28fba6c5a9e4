"""The TOML configuration loader: shapes, merging with the built-in local model, and errors
that name the file, the line and the key."""

from __future__ import annotations

import pytest

from imagegate.catalog import LOCAL_MODEL, Route, default_catalog
from imagegate.catalog_file import ConfigError, load_catalog, parse_catalog

ENV = {"BFL_API_KEY": "bfl-secret", "OPENAI_API_KEY": "sk-openai"}

EXAMPLE = """\
default_model = "flux-pro-1.1"

[providers.bfl-main]
kind = "bfl"                       # a comment
base_url = "https://api.bfl.ai"
api_key_env = "BFL_API_KEY"
max_concurrency = 24
timeout_s = 30
allow_private_urls = false
safety_tolerance = 4

[providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"

[models."flux-pro-1.1"]
routes = [{ provider = "bfl-main", upstream_model = "flux-pro-1.1", priority = 0, weight = 1 }]
async_only = true
deadline_s = 300
sizes = ["1024x1024", "1024x768", "768x1024"]
max_n = 4

[models.gpt-image-1]
routes = [{ provider = "openai" }]
qualities = ["low", "medium", "high"]
parameters = ["quality", "background"]
output_formats = ["png", "jpeg"]
description = "OpenAI's image model"

[aliases]
flux = "flux-pro-1.1"
"""


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_catalog(text, source="gw.toml", environ=ENV if environ is None else environ)
    return caught.value.problems


def test_example_file_becomes_providers_models_and_aliases() -> None:
    catalog = parse_catalog(EXAMPLE, environ=ENV)
    bfl = catalog.providers["bfl-main"]
    assert (bfl.kind, bfl.base_url, bfl.api_key) == ("bfl", "https://api.bfl.ai", "bfl-secret")
    assert (bfl.max_concurrency, bfl.timeout_s, bfl.allow_private_urls) == (24, 30, False)
    assert bfl.options == {"safety_tolerance": 4}
    flux = catalog.models["flux-pro-1.1"]
    assert flux.routes == (Route("bfl-main", "flux-pro-1.1", 0, 1),)
    assert (flux.async_only, flux.deadline_s, flux.max_n) == (True, 300, 4)
    assert flux.sizes == ("1024x1024", "1024x768", "768x1024")
    gpt = catalog.models["gpt-image-1"]
    assert gpt.routes[0].upstream_model == "gpt-image-1"  # defaults to the model id
    assert gpt.parameters == frozenset({"quality", "background"})
    assert gpt.output_formats == ("png", "jpeg")
    assert catalog.default_model == "flux-pro-1.1"
    assert catalog.model("flux") is flux


def test_builtin_local_model_stays_available_beside_the_files_models() -> None:
    catalog = parse_catalog(EXAMPLE, environ=ENV)
    assert catalog.models[LOCAL_MODEL] == default_catalog().models[LOCAL_MODEL]
    assert catalog.providers["local"].kind == "local"


def test_builtin_local_can_be_turned_off() -> None:
    catalog = parse_catalog("builtin_local = false\n" + EXAMPLE, environ=ENV)
    assert LOCAL_MODEL not in catalog.models
    assert "local" not in catalog.providers


def test_without_default_model_a_file_with_models_has_no_default() -> None:
    text = EXAMPLE.replace('default_model = "flux-pro-1.1"\n', "")
    assert parse_catalog(text, environ=ENV).default_model is None


def test_a_file_with_providers_only_keeps_local_as_default() -> None:
    text = '[providers.openai]\nkind = "openai"\napi_key_env = "OPENAI_API_KEY"\n'
    assert parse_catalog(text, environ=ENV).default_model == LOCAL_MODEL


def test_no_file_means_the_builtin_default_catalog() -> None:
    assert load_catalog(None) == default_catalog()


def test_builtin_local_keeps_the_demo_knobs_it_is_given() -> None:
    builtin = default_catalog(latency="1-2", failure_rate=0.5)
    catalog = parse_catalog(EXAMPLE, environ=ENV, builtin=builtin)
    assert catalog.providers["local"].options == {"latency": "1-2", "failure_rate": 0.5}


def test_a_file_may_define_its_own_local_provider_and_model() -> None:
    text = """
[providers.local]
kind = "local"
latency = "0.5"
failure_rate = 0.1

[models.local]
routes = [{ provider = "local" }]
max_n = 2
"""
    catalog = parse_catalog(text, environ={})
    assert catalog.providers["local"].options == {"latency": "0.5", "failure_rate": 0.1}
    assert catalog.models["local"].max_n == 2


def test_unknown_provider_key_names_the_key_and_its_line() -> None:
    text = EXAMPLE.replace("max_concurrency = 24", "max_concurency = 24")
    [problem] = errors(text)
    assert problem.startswith("gw.toml:7: providers.bfl-main.max_concurency: unknown key")
    assert "max_concurrency" in problem  # the list of what is accepted


def test_vendor_option_is_accepted_only_for_the_kind_that_declares_it() -> None:
    text = EXAMPLE.replace(
        'api_key_env = "OPENAI_API_KEY"', 'api_key_env = "OPENAI_API_KEY"\nsafety_tolerance = 2'
    )
    [problem] = errors(text)
    assert problem.startswith("gw.toml:15: providers.openai.safety_tolerance: unknown key")


def test_option_of_the_wrong_type_is_an_error() -> None:
    [problem] = errors(EXAMPLE.replace("safety_tolerance = 4", 'safety_tolerance = "high"'))
    assert problem == "gw.toml:10: providers.bfl-main.safety_tolerance: expected an integer"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("max_n = 4", "max_n = 40", "gw.toml:21: models.flux-pro-1.1.max_n: expected an integer"),
        ("deadline_s = 300", "deadline_s = -1", "gw.toml:19: models.flux-pro-1.1.deadline_s"),
        ("async_only = true", 'async_only = "yes"', "gw.toml:18: models.flux-pro-1.1.async_only"),
        ('"768x1024"]', '"big"]', "gw.toml:20: models.flux-pro-1.1.sizes: expected auto"),
        ('"jpeg"]', '"gif"]', "gw.toml:27: models.gpt-image-1.output_formats: unknown values"),
        ("max_concurrency = 24", "max_concurrency = 0", "gw.toml:7: providers.bfl-main"),
        ("timeout_s = 30", "timeout_s = true", "gw.toml:8: providers.bfl-main.timeout_s"),
        ('"https://api.bfl.ai"', '"api.bfl.ai"', "gw.toml:5: providers.bfl-main.base_url"),
        ('kind = "bfl"', 'kind = "midjourney"', "gw.toml:4: providers.bfl-main.kind: expected"),
    ],
)
def test_bad_values_name_the_key_and_its_line(old: str, new: str, expected: str) -> None:
    problems = errors(EXAMPLE.replace(old, new))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_route_to_an_unknown_provider_is_an_error() -> None:
    [problem] = errors(EXAMPLE.replace('{ provider = "openai" }', '{ provider = "oa" }'))
    assert problem.startswith("gw.toml:24: models.gpt-image-1.routes: route 1: unknown provider")


def test_unknown_route_key_is_an_error() -> None:
    text = EXAMPLE.replace('{ provider = "openai" }', '{ provider = "openai", prio = 1 }')
    [problem] = errors(text)
    assert problem.startswith("gw.toml:24: models.gpt-image-1.routes: prio: unknown key")


def test_routes_as_array_of_tables_are_read_too() -> None:
    text = '[[models.m.routes]]\nprovider = "local"\nupstream_model = "local"\npriority = 1\n'
    assert parse_catalog(text, environ={}).models["m"].routes == (Route("local", "local", 1),)


def test_missing_secret_variable_names_it() -> None:
    [problem] = errors(EXAMPLE, environ={"OPENAI_API_KEY": "sk-x"})
    assert problem == (
        "gw.toml:6: providers.bfl-main.api_key_env: environment variable BFL_API_KEY is not set"
    )


def test_kind_that_needs_a_key_without_api_key_env_is_an_error() -> None:
    [problem] = errors(EXAMPLE.replace('api_key_env = "OPENAI_API_KEY"\n', ""))
    assert problem == (
        "gw.toml:12: providers.openai: kind 'openai' needs api_key_env (a variable name)"
    )


def test_compatible_upstream_may_go_without_a_key() -> None:
    text = '[providers.peer]\nkind = "openai_compatible"\nbase_url = "http://10.0.0.2:8000"\n'
    assert parse_catalog(text, environ={}).providers["peer"].api_key is None


def test_unknown_top_level_key_and_unknown_default_model() -> None:
    text = EXAMPLE.replace('default_model = "flux-pro-1.1"', 'default_model = "nope"\nmodel = 1')
    problems = errors(text)  # in file order
    assert problems[0] == "gw.toml:1: default_model: unknown model 'nope'"
    assert problems[1].startswith("gw.toml:2: model: unknown key; expected one of")


def test_default_size_must_be_one_of_the_sizes() -> None:
    [problem] = errors(EXAMPLE.replace("max_n = 4", 'max_n = 4\ndefault_size = "512x512"'))
    assert problem.startswith("gw.toml:22: models.flux-pro-1.1.default_size: '512x512' is not")


def test_alias_to_an_unknown_model_is_an_error() -> None:
    [problem] = errors(EXAMPLE + 'other = "missing"\n')
    assert problem == "gw.toml:32: aliases.other: unknown model 'missing'"


def test_every_problem_is_reported_at_once() -> None:
    text = EXAMPLE.replace("max_n = 4", "max_n = 0").replace("timeout_s = 30", "timeout_s = 0")
    assert len(errors(text)) == 2


def test_toml_syntax_error_is_a_config_error_with_its_position() -> None:
    [problem] = errors("[providers.x\nkind = 1\n")
    assert problem.startswith("gw.toml: ")
    assert "line 1" in problem
