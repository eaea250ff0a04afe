"""The footer of every console screen: the screen's keys, then the app's global keys
(`: go`, `? help`, `q quit`), then `^p palette` on the right.

Textual's Footer lets keys that do not fit run under the docked palette key (stray letters) and
hides the global keys, which come last. This one drops the screen's *last* keys until the line
fits the width, so `q quit` always shows; every key, shown or not, stays in `?` help. Widths are
counted as the compact footer draws them: `key description` and one space after.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_CELLS = 12  # "▏^p palette" plus its border and padding


class DeckFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)

    def key_cells(self, binding: Binding) -> int:
        return cell_len(self.app.get_key_display(binding)) + 1 + cell_len(binding.description) + 1

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        screen_keys: list[tuple[Binding, bool, str]] = []
        app_keys: list[tuple[Binding, bool, str]] = []
        actions: set[str] = set()
        for node, binding, enabled, tooltip in active.values():
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            (app_keys if node is self.app else screen_keys).append((binding, enabled, tooltip))
        palette = self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE
        room = self.size.width - (PALETTE_CELLS if palette else 0)
        used = sum(self.key_cells(binding) for binding, _, _ in app_keys)
        shown = []
        for entry in screen_keys:
            used += self.key_cells(entry[0])
            if self.size.width and used > room:
                break  # not yet laid out (width 0): all, until the first resize
            shown.append(entry)
        for binding, enabled, tooltip in [*shown, *app_keys]:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if palette and self.app.COMMAND_PALETTE_BINDING in active:
            _node, binding, enabled, tooltip = active[self.app.COMMAND_PALETTE_BINDING]
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self, _event: events.Resize) -> None:
        if self._bindings_ready:  # what fits changed
            self.call_after_refresh(self.recompose)
