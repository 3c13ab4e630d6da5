"""Settings: WIREWATCH_* variables and a .env file, with defaults and validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import Settings


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No WIREWATCH_* variables, and a working directory with no .env file."""
    for name in list(os.environ):
        if name.upper().startswith("WIREWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_environment(bare_env: Path) -> None:
    settings = Settings()
    assert settings.redis_url is None
    assert settings.elasticsearch_url is None
    assert settings.index_prefix == "wirewatch"
    assert settings.data_dir == Path("wirewatch-data")
    assert settings.batch_size == 100
    assert settings.near_duplicate_threshold == 0.5
    assert settings.dedupe_window_seconds == 30 * 86400


def test_directories_default_under_the_data_dir(bare_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bare_env / "store"
    monkeypatch.setenv("WIREWATCH_DATA_DIR", str(data))
    settings = Settings()
    assert settings.data_dir == data
    assert settings.inbox_dir == data / "inbox"
    assert settings.processed_dir == data / "processed"
    assert settings.rejected_dir == data / "rejected"


def test_explicit_inbox_replaces_the_default(bare_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREWATCH_DATA_DIR", str(bare_env / "store"))
    monkeypatch.setenv("WIREWATCH_INBOX", str(bare_env / "drop"))
    settings = Settings()
    assert settings.inbox_dir == bare_env / "drop"
    assert settings.processed_dir == bare_env / "store" / "processed"


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        ("WIREWATCH_REDIS_URL", "redis://cache.internal:6380/2", "redis_url", "redis://cache.internal:6380/2"),
        ("WIREWATCH_ELASTICSEARCH_URL", "https://es.internal:9200", "elasticsearch_url", "https://es.internal:9200"),
        ("WIREWATCH_INDEX_PREFIX", "newsdesk-2", "index_prefix", "newsdesk-2"),
        ("WIREWATCH_BATCH_SIZE", "250", "batch_size", 250),
        ("WIREWATCH_DEDUPE_WINDOW_DAYS", "1.5", "dedupe_window_seconds", 129600),
        ("WIREWATCH_NEAR_DUPLICATE_THRESHOLD", "0.8", "near_duplicate_threshold", 0.8),
        ("WIREWATCH_USER_AGENT", "desk-bot/2", "user_agent", "desk-bot/2"),
    ],
)
def test_settings_come_from_prefixed_variables(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, attribute: str, expected: object
) -> None:
    monkeypatch.setenv(variable, raw)
    assert getattr(Settings(), attribute) == expected


def test_variables_without_the_prefix_are_ignored(bare_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEX_PREFIX", "unprefixed")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    settings = Settings()
    assert settings.index_prefix == "wirewatch"
    assert settings.redis_url is None


@pytest.mark.parametrize("prefix", ["Wirewatch", "-leading-dash", "has space", "dots.not.allowed", ""])
def test_bad_index_prefix_is_rejected(bare_env: Path, monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("WIREWATCH_INDEX_PREFIX", prefix)
    with pytest.raises(ValidationError, match="index_prefix"):
        Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WIREWATCH_ELASTICSEARCH_USERNAME", "ingest"), ("WIREWATCH_ELASTICSEARCH_PASSWORD", "s3cret")],
)
def test_half_of_basic_auth_is_rejected(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match="WIREWATCH_ELASTICSEARCH_USERNAME and WIREWATCH_ELASTICSEARCH_PASSWORD"):
        Settings()


def test_username_with_password_is_accepted_and_password_stays_secret(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREWATCH_ELASTICSEARCH_USERNAME", "ingest")
    monkeypatch.setenv("WIREWATCH_ELASTICSEARCH_PASSWORD", "s3cret-value")
    settings = Settings()
    assert settings.elasticsearch_username == "ingest"
    assert settings.elasticsearch_password is not None
    assert settings.elasticsearch_password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WIREWATCH_BATCH_SIZE", "0"),
        ("WIREWATCH_BATCH_SIZE", "5000"),
        ("WIREWATCH_NEAR_DUPLICATE_THRESHOLD", "0"),
        ("WIREWATCH_NEAR_DUPLICATE_THRESHOLD", "1.5"),
        ("WIREWATCH_FEED_INTERVAL_SECONDS", "5"),
        ("WIREWATCH_DEDUPE_WINDOW_DAYS", "not-a-number"),
    ],
)
def test_out_of_range_values_are_rejected(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()


def test_dotenv_in_the_working_directory_is_read(bare_env: Path) -> None:
    (bare_env / ".env").write_text(
        "WIREWATCH_INDEX_PREFIX=from-dotenv\nWIREWATCH_BATCH_SIZE=42\nWIREWATCH_DATA_DIR=/srv/wirewatch\n",
        encoding="utf-8",
    )
    settings = Settings()
    assert settings.index_prefix == "from-dotenv"
    assert settings.batch_size == 42
    assert settings.inbox_dir == Path("/srv/wirewatch/inbox")


def test_environment_wins_over_dotenv(bare_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (bare_env / ".env").write_text("WIREWATCH_INDEX_PREFIX=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("WIREWATCH_INDEX_PREFIX", "from-env")
    assert Settings().index_prefix == "from-env"


def test_dotenv_with_unknown_keys_and_other_programs_settings_is_accepted(bare_env: Path) -> None:
    (bare_env / ".env").write_text(
        "POSTGRES_PASSWORD=unrelated\nWIREWATCH_NO_SUCH_SETTING=1\nWIREWATCH_BATCH_SIZE=7\n", encoding="utf-8"
    )
    assert Settings().batch_size == 7


def test_dotenv_values_are_validated(bare_env: Path) -> None:
    (bare_env / ".env").write_text("WIREWATCH_ELASTICSEARCH_USERNAME=ingest\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="or neither"):
        Settings()


def test_settings_fixture_points_at_the_test_data_dir_and_redis(settings: Settings, tmp_path: Path) -> None:
    assert settings.data_dir == tmp_path / "data"
    assert settings.inbox_dir == tmp_path / "data" / "inbox"
    assert settings.redis_url is not None and settings.redis_url.endswith("/15")
