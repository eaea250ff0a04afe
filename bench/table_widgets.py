"""Table widgets with 100,000 rows: our VirtualTable, Textual's DataTable, textual-fastdatatable.

    python -m bench.table_widgets [--rows 100000]

Each widget runs in its own process (so the RSS figures are its own), headless at 120x40 with
Pilot, with 8 columns shaped like the Regions table. We time: giving it the rows (and the
first paint), a refresh with a new list of rows, jumps to the last and first row through the
widget's own key actions (each until repainted), and the peak RSS of the process.
textual-fastdatatable is measured only when it is importable (it is not a dependency: it pulls
in pyarrow); install it in a scratch environment to compare, e.g.
`uv pip install --python /tmp/fdt/bin/python textual==<ours> textual-fastdatatable`.
DataTable is run with at most 10,000 rows: it measures every cell (~0.3 ms a row here).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widget import Widget

WIDTHS = (17, 3, 7, 6, 12, 37, 16, 24)
LABELS = ("Code", "On", "Last", "Lag", "Cron", "Next 3 runs (UTC)", "TZ", "Name")
DATATABLE_MAX = 10_000


def records(count: int, generation: int = 0) -> list[tuple[str, ...]]:
    return [
        (
            f"REGION_{n:06d}",
            "on",
            ("ok", "failed", "skipped")[(n + generation) % 3],
            f"{(n * 7 + generation) % 5000}ms",
            f"{n % 60} */{1 + n % 12} * * *",
            "11-24 03:00, 11-25 03:00, 11-26 03:00",
            "America/Detroit",
            f"Region {n}",
        )
        for n in range(count)
    ]


def cells(row: tuple[str, ...]) -> tuple[Text | str, ...]:
    return (Text(row[0], style="bold"), Text(row[1], style="green"), *row[2:])


class Bench(App[None]):
    def __init__(self, make: Callable[[], Widget]) -> None:
        super().__init__()
        self.make = make

    def compose(self) -> ComposeResult:
        yield self.make()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def run(widget: str, count: int) -> str:
    rows = records(count)
    load: Callable[[Any, list[tuple[str, ...]]], None]
    if widget == "virtual":
        from console.widgets.virtual_table import Column, VirtualTable

        columns = [Column(label, label, w) for label, w in zip(LABELS, WIDTHS, strict=True)]

        def make() -> Widget:
            return VirtualTable(columns, cells, key=lambda row: row[0])

        def load(table: Any, data: list[tuple[str, ...]]) -> None:
            table.set_rows(data)

        last, first = "action_last", "action_first"
    elif widget == "datatable":
        from textual.widgets import DataTable

        count = min(count, DATATABLE_MAX)
        rows = rows[:count]

        def make() -> Widget:
            table: DataTable[Text | str] = DataTable(cursor_type="row")
            for label, width in zip(LABELS, WIDTHS, strict=True):
                table.add_column(label, width=width)
            return table

        def load(table: Any, data: list[tuple[str, ...]]) -> None:
            table.clear()
            for row in data:
                table.add_row(*cells(row), key=row[0])

        last, first = "action_scroll_bottom", "action_scroll_top"
    else:
        from textual_fastdatatable import (  # type: ignore[import-not-found]
            ArrowBackend,
            DataTable,
        )

        def make() -> Widget:
            return DataTable(backend=ArrowBackend.from_records([LABELS], has_header=True))  # type: ignore[no-any-return]

        def load(table: Any, data: list[tuple[str, ...]]) -> None:
            # Its Arrow backend cannot be cleared or replaced in place ("unmount this table and
            # mount a new one"): a refresh builds a new backend and a new widget.
            backend = ArrowBackend.from_records([LABELS, *data], has_header=True)
            parent = table.parent
            table.remove()
            parent.mount(DataTable(backend=backend))

        last, first = "action_scroll_end", "action_scroll_home"

    app = Bench(make)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        load(app.screen.children[0], rows)
        await pilot.pause()
        build = time.perf_counter() - t0
        fresh = records(count, 1)
        t0 = time.perf_counter()
        load(app.screen.children[0], fresh)
        await pilot.pause()
        refresh = time.perf_counter() - t0
        table = app.screen.children[0]
        table.focus()
        await pilot.pause()
        t0 = time.perf_counter()
        await pilot.pause()
        idle = time.perf_counter() - t0
        jumps: list[float] = []
        for _ in range(5):
            for action in (last, first):
                t0 = time.perf_counter()
                getattr(table, action)()
                await pilot.pause()
                jumps.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"{widget:<14} {count:>7} rows: load+paint {ms(build)}, refresh {ms(refresh)},"
        f" jump p50 {ms(sorted(jumps)[len(jumps) // 2])} (an idle repaint: {ms(idle)}),"
        f" peak RSS {rss:.0f} MB"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--widget", choices=("virtual", "datatable", "fastdatatable"))
    args = parser.parse_args(argv)
    if args.widget:
        print(asyncio.run(run(args.widget, args.rows)), flush=True)
        return
    for widget in ("virtual", "datatable", "fastdatatable"):
        if widget == "fastdatatable":
            try:
                import textual_fastdatatable  # type: ignore[import-not-found]  # noqa: F401
            except ImportError:
                print("fastdatatable  not installed here (see the docstring)")
                continue
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.table_widgets",
                "--widget",
                widget,
                "--rows",
                str(args.rows),
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
