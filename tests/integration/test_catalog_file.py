"""Loading the configuration from a real file, as ``imagegate serve --config FILE`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegate.catalog_file import ConfigError, load_catalog


def test_file_is_read_and_problems_name_its_path(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[providers.peer]\nkind = "openai_compatible"\nbase_url = "http://127.0.0.1:1"\n'
    )
    assert load_catalog(path, environ={}).providers["peer"].base_url == "http://127.0.0.1:1"
    path.write_text('[providers.peer]\nkind = "openai_compatible"\nbase = "x"\n')
    with pytest.raises(ConfigError, match=rf"{path}:3: providers.peer.base: unknown key"):
        load_catalog(path, environ={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_catalog(tmp_path / "missing.toml")
