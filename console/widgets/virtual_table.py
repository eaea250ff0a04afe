"""A table that renders only the rows on screen (Textual's line API), for lists of any length.

Textual's DataTable measures and renders every cell of every row it is given (~0.3 ms a row
here), which capped the console's tables at 1,000 rows. This table holds a reference to the
screen's row list and a function that turns one row into cells; it builds cells only for the
lines being painted (a terminal's height of them), so giving it 100,000 rows costs a list
assignment, and scrolling or jumping costs the same as at 10 rows.

Invariants:
- Column widths are set by the screen (no measuring); a cell longer than its column is cut
  with an ellipsis, a shorter one padded. On a narrow terminal, columns the screen marks so
  narrow to their `shrink_to` or are left out below their `hide_below` (`fit_columns`), so the
  important ones stay on screen; what still does not fit scrolls sideways.
- `set_rows` keeps the cursor on the same row key when that row is still there (found at the
  same index first, then by a scan of the keys: O(n) only when the rows moved; a sequence
  with an `index_of(key)` method, such as a window of a longer list, answers itself).
- Line 0 is the header and never scrolls vertically; line y shows row `scroll_y + y - 1`.
- Painted lines are cached by (row, cursor, width, scroll_x, generation); `set_rows` and
  `set_columns` start a new generation, so stale lines are never shown.

Costs: `set_rows` O(1) (+ the cursor lookup); a repaint O(height x columns); memory is the
screen's row list plus a few hundred cached lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, overload

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

T = TypeVar("T")
Cell = Text | str
CELL_PADDING = 1


class Window(Sequence[T | None], Generic[T]):
    """A list of `total` rows of which only `rows` (from index `offset`) were read: None
    elsewhere (a screen's cells show a placeholder until a load reads them there)."""

    def __init__(
        self, rows: Sequence[T], offset: int, total: int, key: Callable[[Any], object]
    ) -> None:
        self.rows, self.offset, self.total, self._key = rows, offset, total, key

    def __len__(self) -> int:
        return self.total

    @overload
    def __getitem__(self, index: int) -> T | None: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T | None]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T | None] | None:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        position = index - self.offset
        return self.rows[position] if 0 <= position < len(self.rows) else None

    def index_of(self, key: object) -> int | None:
        for position, row in enumerate(self.rows):
            if self._key(row) == key:
                return self.offset + position
        return None

    def loaded(self, start: int, stop: int) -> bool:
        """Whether rows start..stop (say, those on screen) were all read."""
        stop = min(stop, len(self))
        return start >= stop or (self.offset <= start and stop <= self.offset + len(self.rows))


def window_offset(table: VirtualTable[Any], size: int) -> int:
    """Where a window of `size` rows should start to hold the table's screen in its middle."""
    return max(0, round(table.scroll_y) - (size - table.size.height) // 2)


def window_is_stale(table: VirtualTable[Any], rows: Window[Any]) -> bool:
    top = round(table.scroll_y)
    return not rows.loaded(top, top + table.size.height)


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    key: str
    width: int
    # When the table is narrower than its columns: a column may narrow down to `shrink_to`
    # cells (0: it keeps its width), and is left out below `hide_below` cells of table width.
    shrink_to: int = 0
    hide_below: int = 0


def fit_columns(columns: Sequence[Column], available: int) -> list[tuple[int, int]]:
    """(column index, width) of the columns shown in `available` cells: the ones not hidden at
    this width; then, while they do not fit, the shrinkable ones narrow, the last first.
    `available` <= 0 (not laid out yet): every column at its width. What still does not fit
    scrolls sideways."""
    if available <= 0:
        return [(i, c.width) for i, c in enumerate(columns)]
    shown = [(i, c.width) for i, c in enumerate(columns) if available >= c.hide_below]
    excess = sum(width + 2 * CELL_PADDING for _, width in shown) - available
    for position in reversed(range(len(shown))):
        if excess <= 0:
            break
        index, width = shown[position]
        floor = columns[index].shrink_to or width
        give = min(excess, width - floor)
        shown[position] = (index, width - give)
        excess -= give
    return shown


class VirtualTable(ScrollView, Generic[T], can_focus=True):
    """Rows are any objects; `cells(row)` gives their cells, `key(row)` a stable identity."""

    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        &:focus {
            background-tint: $foreground 5%;
            & > .virtual-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .virtual-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .virtual-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .virtual-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .virtual-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .virtual-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .virtual-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--cursor",
        "virtual-table--header",
        "virtual-table--even-row",
    }

    BINDINGS: ClassVar = [
        Binding("up", "cursor(-1)", "up", show=False, id="table.up"),
        Binding("down", "cursor(1)", "down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "page down", show=False, id="table.page_down"),
        Binding("home", "first", "first row", show=False, id="table.first"),
        Binding("end", "last", "last row", show=False, id="table.last"),
        Binding("enter", "select", "select", show=False, id="table.select"),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=False, repaint=False, init=False)

    class RowHighlighted(Message):
        """The cursor moved to another row (or the rows under it changed)."""

        def __init__(self, table: VirtualTable[Any], cursor_row: int) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row

        @property
        def control(self) -> VirtualTable[Any]:
            return self.table

    class RowSelected(Message):
        """`enter` (or a click) on a row."""

        def __init__(self, table: VirtualTable[Any], cursor_row: int) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row

        @property
        def control(self) -> VirtualTable[Any]:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        cells: Callable[[T], Sequence[Cell]],
        key: Callable[[T], object],
        *,
        zebra_stripes: bool = True,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns: tuple[Column, ...] = tuple(columns)
        self._cells = cells
        self._key = key
        self.zebra_stripes = zebra_stripes
        self.rows: Sequence[T] = ()
        self._layout = fit_columns(self.columns, 0)
        self._generation = 0
        self._lines: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)
        self._update_virtual_size()

    # --- the data ---------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def get_row_at(self, index: int) -> list[Cell]:
        """The cells of a row (as the screen's `cells` makes them)."""
        return list(self._cells(self.rows[index]))

    def row_at_cursor(self) -> T | None:
        if 0 <= self.cursor_row < len(self.rows):
            return self.rows[self.cursor_row]
        return None

    def set_rows(self, rows: Sequence[T]) -> None:
        """Show these rows (the table keeps the sequence: do not mutate it afterwards)."""
        previous = self.row_at_cursor()
        old_index = self.cursor_row
        self.rows = rows
        self._generation += 1
        self._lines.clear()
        self._update_virtual_size()
        index = old_index
        if previous is not None:
            index = self._find(self._key(previous), old_index)
        self._set_cursor(index, force_message=True)
        self.refresh()

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self._layout = fit_columns(self.columns, self.scrollable_content_region.width)
        self._generation += 1
        self._lines.clear()
        self._update_virtual_size()
        self.refresh()

    def clear(self) -> None:
        self.set_rows(())

    def _find(self, key: object, hint: int) -> int:
        rows, key_of = self.rows, self._key
        if 0 <= hint < len(rows) and key_of(rows[hint]) == key:
            return hint
        index_of = getattr(rows, "index_of", None)
        if index_of is not None:  # a partly loaded sequence knows where to look
            found = index_of(key)
            return found if found is not None else min(hint, max(len(rows) - 1, 0))
        for index, row in enumerate(rows):
            if key_of(row) == key:
                return index
        return min(hint, max(len(rows) - 1, 0))

    def _update_virtual_size(self) -> None:
        width = sum(width + 2 * CELL_PADDING for _, width in self._layout)
        self.virtual_size = Size(width, len(self.rows) + 1)

    # --- the cursor -------------------------------------------------------------------------

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        self._set_cursor(row)

    def _set_cursor(self, row: int, force_message: bool = False) -> None:
        row = max(0, min(row, len(self.rows) - 1)) if self.rows else 0
        changed = row != self.cursor_row
        old = self.cursor_row
        self.cursor_row = row
        self._scroll_to_cursor()
        if changed:
            self._refresh_row(old)
            self._refresh_row(row)
        if changed or force_message:
            self.post_message(self.RowHighlighted(self, row))

    def _refresh_row(self, row: int) -> None:
        y = row - round(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    @property
    def _body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        height = self._body_height
        if self.cursor_row < top:
            self._scroll_rows(self.cursor_row)
        elif self.cursor_row >= top + height:
            self._scroll_rows(self.cursor_row - height + 1)

    def _scroll_rows(self, y: float) -> None:
        # Forced: Textual drops an unforced scroll while the widget shows no scrollbar, and the
        # scrollbar appears only at the next layout. Rows just set and End acted on in the same
        # frame (a busy machine) left the cursor on the last row and the screen on the first.
        self.scroll_to(y=y, animate=False, immediate=True, force=True)

    def action_cursor(self, step: int) -> None:
        self._set_cursor(self.cursor_row + step)

    def action_page(self, step: int) -> None:
        height = self._body_height
        self._scroll_rows(self.scroll_y + step * height)
        self._set_cursor(self.cursor_row + step * height)

    def action_first(self) -> None:
        self._set_cursor(0)

    def action_last(self) -> None:
        self._set_cursor(len(self.rows) - 1)

    def action_select(self) -> None:
        if self.rows:
            self.post_message(self.RowSelected(self, self.cursor_row))

    def on_click(self, event: Any) -> None:
        row = round(self.scroll_y) + event.y - 1
        if event.y >= 1 and 0 <= row < len(self.rows):
            if row == self.cursor_row and getattr(event, "chain", 1) >= 2:
                self.action_select()
            self._set_cursor(row)

    def on_resize(self) -> None:
        self._layout = fit_columns(self.columns, self.scrollable_content_region.width)
        self._update_virtual_size()
        self._lines.clear()
        self._scroll_to_cursor()

    def on_focus(self) -> None:
        self._lines.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._lines.clear()
        self.refresh()

    # --- painting ---------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = -1 if y == 0 else scroll_y + y - 1  # -1: the header
        cursor = row == self.cursor_row
        cache_key = (row, cursor, width, scroll_x, self._generation, self.has_focus)
        line = self._lines.get(cache_key)
        if line is None:
            line = self._render_row(row, cursor).crop(scroll_x, scroll_x + width)
            line = line.extend_cell_length(width, self.rich_style)
            self._lines[cache_key] = line
        return line

    def _render_row(self, row: int, cursor: bool) -> Strip:
        base = self.rich_style
        if row < 0:
            style = base + self.get_component_rich_style("virtual-table--header")
            cells: Sequence[Cell] = [column.label for column in self.columns]
        elif row >= len(self.rows):
            return Strip.blank(self.virtual_size.width, base)
        else:
            style = base
            if self.zebra_stripes and row % 2:
                style += self.get_component_rich_style("virtual-table--even-row")
            if cursor:
                style += self.get_component_rich_style("virtual-table--cursor")
            cells = self._cells(self.rows[row])
        segments: list[Segment] = []
        console = self.app.console
        padding = " " * CELL_PADDING
        for index, width in self._layout:
            if index >= len(cells):
                break
            cell = cells[index]
            plain = _plain(cell)
            if plain is not None:  # printable text without spans: no Text copied or rendered
                segments.append(Segment(f"{padding}{_fit(plain, width)}{padding}", style))
                continue
            text_cell = cell.copy() if isinstance(cell, Text) else Text(cell)
            text_cell.no_wrap = True
            text_cell.truncate(width, overflow="ellipsis", pad=True)
            segments.append(Segment(padding, style))
            for segment in text_cell.render(console):
                segments.append(Segment(segment.text, style + (segment.style or Style())))
            segments.append(Segment(padding, style))
        return Strip(segments).simplify()


def _plain(cell: Cell) -> str | None:
    """A cell's text when it paints as the row's style over plain text, as rich renders a Text
    without spans (its base style is not applied: `Text.render` yields the bare text); None
    when it needs rich's rendering (spans, tabs, newlines, control codes, justification)."""
    if isinstance(cell, str):
        return cell if cell.isprintable() else None
    if cell.spans or not cell.plain.isprintable() or cell.justify not in (None, "left", "default"):
        return None
    return cell.plain


def _fit(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis when longer, padded when shorter."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 0 else ""
    return set_cell_size(text, width)
