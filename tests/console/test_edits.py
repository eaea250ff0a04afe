"""Every console edit ends in one `run_edit`: a refusal a person can act on (a UserError) shows
as its message under its title, a store that is away says so, and anything else is logged as a
bug and shown with its type, never as a refusal. Each refusal of the project is a UserError."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from console.data.alerts import SilenceError
from console.screens.regions import RegionsScreen
from engine.platforms.registry import NotConfigured
from engine.queue_admin import QueueError
from storage.crypto import EncryptionKeyError, TokenUnreadable
from storage.database import Database
from storage.queries.experiments import ExperimentError
from storage.queries.key_check import KeyCheckFailed, RotationRefused
from storage.queries.publishing import PublishingError
from storage.queries.regions import RegionError
from storage.schedule import ScheduleError
from storage.settings import Settings
from storage.user_error import UserError
from tests.console.test_app import SIZE, add_region, loaded, make_app, wait_until

REFUSALS = [
    (ScheduleError, ValueError),
    (RegionError, ValueError),
    (PublishingError, ValueError),
    (ExperimentError, ValueError),
    (SilenceError, ValueError),
    (KeyCheckFailed, RuntimeError),
    (RotationRefused, RuntimeError),
    (EncryptionKeyError, RuntimeError),
    (TokenUnreadable, RuntimeError),
    (NotConfigured, LookupError),
    (QueueError, Exception),
]


@pytest.mark.parametrize(("error", "old_base"), REFUSALS)
def test_every_refusal_is_a_user_error_and_keeps_its_old_base(
    error: type[Exception], old_base: type[Exception]
) -> None:
    assert issubclass(error, UserError) and issubclass(error, old_base)
    assert error.title and error.title != UserError.title  # each says what kind of refusal


async def _raise(exc: Exception) -> None:
    raise exc


async def test_run_edit_reports_each_kind_of_failure_once(
    test_settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await add_region(db, "EDITS")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, RegionsScreen)

        async def outcome(exc: Exception | None) -> tuple[str, str, str]:
            before = len(app._notifications)
            write = _raise(exc) if exc else _ok()
            await screen.run_edit(write, failed="not saved", done=lambda _: "saved")
            await wait_until(pilot, lambda: len(app._notifications) > before, "a notice")
            note = list(app._notifications)[-1]
            return note.message, note.title, note.severity

        assert await outcome(None) == ("saved", "", "information")
        message, title, severity = await outcome(ScheduleError("minute: 61 is out of range"))
        assert (message, title, severity) == (
            "not saved: minute: 61 is out of range",
            "invalid schedule",
            "error",
        )
        message, _, severity = await outcome(RedisConnectionError("refused"))
        assert message.startswith("not saved: store unreachable (ConnectionError")
        assert severity == "error"
        assert not caplog.records  # a known failure is not a bug: nothing logged
        with caplog.at_level(logging.ERROR, logger="console.screens.live"):
            message, _, severity = await outcome(KeyError("oops"))
        assert message == "not saved: unexpected error (KeyError: 'oops')"
        assert [r.message for r in caplog.records] == ["edit failed: not saved"]
        assert caplog.records[0].exc_info is not None  # the traceback is in the log


async def _ok() -> None:
    return None
