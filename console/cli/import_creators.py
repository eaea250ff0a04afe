"""`creatordeck creators import FILE.csv`: validate every row, keep the good ones, report the bad.

Columns (header row required, order free): platform, external_id, handle, and optionally
display_name, region (or region_code), contact_url, status. A row is refused with a precise
reason (row number, column, what is wrong); the others are upserted by (platform, external_id)
in chunks, so an import can be re-run safely.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from storage.database import Database
from storage.queries import creators
from storage.queries.creators import CreatorInput
from storage.settings import Settings

CHUNK = 1000
REQUIRED = ("platform", "external_id", "handle")
ALIASES = {"region": "region_code", "contact": "contact_url", "name": "display_name"}


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # line number in the file (the header is line 1)
    column: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return len({e.row for e in self.errors})


class ImportFileError(ValueError):
    """The file as a whole cannot be read (missing, no header, missing columns)."""


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                raise ImportFileError(f"{path}: empty file (a header row is required)")
            header = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in reader.fieldnames]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise ImportFileError(
                    f"{path}: missing column(s) {', '.join(missing)}; "
                    f"the header has {', '.join(header)}"
                )
            reader.fieldnames = header
            return header, [dict(row) for row in reader]
    except FileNotFoundError as exc:
        raise ImportFileError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not valid CSV ({exc})") from exc


def validate(
    rows: list[dict[str, str]], known_regions: set[str]
) -> tuple[list[CreatorInput], list[RowError]]:
    """Valid rows (the last of duplicates wins) and the errors of the others."""
    good: dict[tuple[str, str], tuple[int, CreatorInput]] = {}
    errors: list[RowError] = []
    for index, raw in enumerate(rows):
        line = index + 2
        if None in raw:
            errors.append(RowError(line, "-", "more fields than the header has columns"))
            continue
        values = {k: (v or "").strip() for k, v in raw.items() if k}
        try:
            item = CreatorInput.model_validate({k: v for k, v in values.items() if v != ""})
        except ValidationError as exc:
            for err in exc.errors():
                column = ".".join(str(p) for p in err["loc"]) or "-"
                message = err["msg"].removeprefix("Value error, ")
                errors.append(RowError(line, column, message))
            continue
        if item.region_code is not None and item.region_code not in known_regions:
            errors.append(RowError(line, "region_code", f"unknown region {item.region_code!r}"))
            continue
        identity = (item.platform.value, item.external_id)
        if identity in good:
            earlier = good[identity][0]
            errors.append(
                RowError(earlier, "external_id", f"duplicate of line {line} (line {line} kept)")
            )
        good[identity] = (line, item)
    return [item for _, item in good.values()], sorted(errors, key=lambda e: e.row)


async def import_file(
    settings: Settings,
    path: Path,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a CSV file; `on_progress(done, total)` after each chunk."""
    _, rows = read_rows(path)
    report = ImportReport(rows=len(rows))
    db = Database(settings)
    try:
        async with db.session() as session:
            known = await creators.region_codes(session)
        good, report.errors = validate(rows, known)
        if on_progress:
            on_progress(0, len(good))
        for start in range(0, len(good), CHUNK):
            chunk = good[start : start + CHUNK]
            async with db.transaction() as session:
                report.imported += await creators.upsert_creators(session, chunk)
            if on_progress:
                on_progress(min(start + CHUNK, len(good)), len(good))
    finally:
        await db.dispose()
    return report


def write_errors(path: Path, errors: list[RowError]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "error"])
        writer.writerows((e.row, e.column, e.message) for e in errors)
