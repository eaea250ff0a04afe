"""The settings tree: flat environment names, sections read alone, every setting in README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from storage.settings import SECTIONS, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def env_names(model: type[BaseSettings]) -> dict[str, str]:
    """Field name -> the environment variable it is read from."""
    prefix = str(model.model_config.get("env_prefix", ""))
    return {
        name: (str(field.validation_alias) if field.validation_alias else prefix + name).upper()
        for name, field in model.model_fields.items()
        if name not in SECTIONS
    }


def every_env_name() -> set[str]:
    names = set(env_names(Settings).values())
    for section in SECTIONS.values():
        names |= set(env_names(section).values())
    return names


def test_every_setting_has_a_docstring() -> None:
    for model in (Settings, *SECTIONS.values()):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


def test_every_variable_is_in_the_readme() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README.read_text()))
    assert every_env_name() - documented == set()


def test_sections_read_their_flat_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCURRENCY", "7")
    monkeypatch.setenv("API_WORKERS", "3")
    monkeypatch.setenv("ALERT_FOR_MAX_S", "12")
    monkeypatch.setenv("EVENT_RETENTION_DAYS", "5")
    monkeypatch.setenv("DEMO_MOCK_PORT", "9002")
    monkeypatch.setenv("MOCKSTAGRAM_URL", "http://127.0.0.1:9")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.engine.concurrency == 7
    assert settings.api.workers == 3
    assert settings.alerts.for_max_s == 12
    assert settings.retention.event_days == 5
    assert settings.demo.mock_port == 9002
    assert settings.tracking.mockstagram_url == "http://127.0.0.1:9"


def test_a_section_given_in_part_keeps_the_rest_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICK_SHARDS", "4")
    settings = Settings(engine={"concurrency": 2}, _env_file=None)  # type: ignore[call-arg]
    assert (settings.engine.concurrency, settings.engine.tick_shards) == (2, 4)
    changed = settings.replace(engine={"concurrency": 9})
    assert (changed.engine.concurrency, changed.engine.tick_shards) == (9, 4)
    assert settings.engine.concurrency == 2


def test_a_bad_value_names_its_variable_and_hides_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_WORKERS", "many-secret")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "api_workers" in str(refused.value) and "many-secret" not in str(refused.value)


def test_a_variable_named_like_a_section_is_not_read_as_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENGINE", "some other program's")
    monkeypatch.setenv("CONCURRENCY", "3")
    assert Settings(_env_file=None).engine.concurrency == 3  # type: ignore[call-arg]
