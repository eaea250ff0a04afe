"""Key bindings from the console's settings file, and the 256-colour themes."""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding
from textual.color import Color
from textual.dom import DOMNode
from textual.widgets._footer import FooterKey

from console.app import CreatordeckApp
from console.keymap import load_config
from console.screens.dialogs import ConfirmModal
from console.screens.help import HelpModal
from console.screens.overview import OverviewScreen
from console.themes import CREATORDECK, CREATORDECK_LIGHT, DEFAULT_THEME
from engine.queues import connect
from engine.tick_queue import TickRequest, enqueue_ticks
from storage.settings import Settings
from tests.console.screens.test_queues import open_queues
from tests.console.test_app import FROZEN, SIZE, frozen_clock, notifications, wait_until

KNOWN = {"queues.delete", "queues.retry", "app.quit"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "console.toml"
    path.write_text(text)
    return path


def test_config_file_is_validated_entry_by_entry(tmp_path: Path) -> None:
    config = load_config(
        KNOWN,
        write(
            tmp_path,
            'theme = "nord"\nwhatever = 1\n[keys]\n"queues.delete" = "delete, ctrl+d"\n'
            '"queues.nope" = "z"\n"queues.retry" = "ctrl+ +"\n"app.quit" = 5\n',
        ),
    )
    assert config.keys == {"queues.delete": "delete,ctrl+d"}
    assert config.theme == "nord"
    errors = "\n".join(config.errors)
    assert "no binding 'queues.nope'" in errors and "queues.delete" in errors
    assert "'ctrl+ +' is not a key name" in errors
    assert "app.quit = 5: expected a key" in errors
    assert "unknown setting(s) whatever" in errors

    broken = load_config(KNOWN, write(tmp_path, "[keys\n"))
    assert broken.keys == {} and "using the default keys" in broken.errors[0]
    assert load_config(KNOWN, tmp_path / "absent.toml").errors == ()


def test_themes_use_exact_xterm_256_colours() -> None:
    levels = (0x00, 0x5F, 0x87, 0xAF, 0xD7, 0xFF)
    cube = {(r, g, b) for r in levels for g in levels for b in levels}
    greys = {(8 + 10 * n,) * 3 for n in range(24)}
    for theme in (CREATORDECK, CREATORDECK_LIGHT):
        for name in ("primary", "secondary", "accent", "warning", "error", "success"):
            colour = Color.parse(getattr(theme, name))
            assert colour.rgb in cube | greys, (theme.name, name, colour.hex)
        for name in ("foreground", "background", "surface", "panel", "boost"):
            assert Color.parse(getattr(theme, name)).rgb in cube | greys, (theme.name, name)


async def test_remapped_keys_work_and_show_in_help(test_settings: Settings, tmp_path: Path) -> None:
    redis = await connect(test_settings)
    try:
        await enqueue_ticks(redis, test_settings, [TickRequest("DETROIT_METRO", FROZEN)])
    finally:
        await redis.aclose()
    path = write(
        tmp_path,
        'theme = "creatordeck-light"\n[keys]\n"queues.delete" = "delete"\n"app.quit" = "ctrl+q"\n',
    )
    app = CreatordeckApp(test_settings, clock=frozen_clock, config_file=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the landing")
        assert app.theme == "creatordeck-light"
        screen = await open_queues(pilot)
        await pilot.press("x")  # no longer delete
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal)
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen, "back")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpModal), "help")
        help_ = app.screen
        assert isinstance(help_, HelpModal)
        assert ("delete", "delete the job (asks first) [queues.delete]") in help_.screen_keys
        assert ("ctrl+q", "quit [app.quit]") in help_.global_keys
        await pilot.press("escape", "q")  # q no longer quits
        await pilot.pause()
        assert app.is_running
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, "quit on ctrl+q")


async def test_default_theme_and_bad_settings_are_reported(
    test_settings: Settings, tmp_path: Path
) -> None:
    app = CreatordeckApp(test_settings, clock=frozen_clock, config_file=tmp_path / "none.toml")
    async with app.run_test(size=SIZE):
        assert app.theme == DEFAULT_THEME
    path = write(tmp_path, 'theme = "no-such-theme"\n[keys]\n"queues.nope" = "z"\n')
    app = CreatordeckApp(test_settings, clock=frozen_clock, config_file=path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == DEFAULT_THEME
        messages = notifications(app)
        assert any("no theme 'no-such-theme'" in m for m in messages)
        assert any("no binding 'queues.nope'" in m for m in messages)


def test_every_binding_of_every_screen_modal_and_widget_has_an_id() -> None:
    missing = []
    pending: list[type[DOMNode]] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] != "console":
            continue
        for binding in cls.__dict__.get("BINDINGS", ()):
            if not isinstance(binding, Binding) or not binding.id:
                missing.append(f"{cls.__module__}.{cls.__name__}: {binding!r}")
    assert CreatordeckApp.BINDINGS and not missing, "\n".join(missing)


def test_screen_and_modal_keys_can_be_remapped_by_id(
    test_settings: Settings, tmp_path: Path
) -> None:
    known = CreatordeckApp(test_settings, clock=frozen_clock).known_binding_ids()
    wanted = {
        "posts.compose": "N",
        "creators.open": "o",
        "experiments.start": "S",
        "deadletters.requeue": "ctrl+r",
        "connections.posts": "P",
        "command.complete": "ctrl+i",
        "confirm.yes": "j",
        "post_compose.save": "ctrl+w",
    }
    lines = "\n".join(f'"{k}" = "{v}"' for k, v in wanted.items())
    config = load_config(known, write(tmp_path, f"[keys]\n{lines}\n"))
    assert config.errors == () and config.keys == wanted


async def test_the_footer_shows_a_remapped_key_from_the_first_frame(
    test_settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, '[keys]\n"app.quit" = "ctrl+q"\n"overview.queues" = "U"\n')
    app = CreatordeckApp(test_settings, clock=frozen_clock, config_file=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the landing")
        await pilot.pause()
        shown = {(key.key, key.description) for key in app.screen.query(FooterKey)}
        assert ("ctrl+q", "quit") in shown and ("q", "quit") not in shown, shown
        assert ("U", "queues") in shown and ("u", "queues") not in shown, shown
