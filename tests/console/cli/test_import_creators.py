"""`creatordeck creators import`: bad rows reported precisely, good rows kept, re-runs safe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from console.cli.import_creators import ImportFileError, import_file
from storage.database import Database
from storage.models import Creator
from storage.settings import Settings
from tests.conftest import engine_env
from tests.support.creators import add_region

CSV = """platform,external_id,handle,display_name,region,contact_url
mock,u1,@one,One,TEST_REGION,https://linktr.ee/one
mock,u2,two,,TEST_REGION,mailto:two@example.com
mock,u3,three,,NOWHERE,
tiktok,u4,four,,,
mock,u5,five,,TEST_REGION,+1 313 555 0100
youtube,UCabc,chan,Channel,TEST_REGION,
mock,u6,,,TEST_REGION,
x,2244994945,xdev,,,https://x.com/xdev
"""


async def test_import_keeps_good_rows_and_reports_bad_ones(
    tmp_path: Path, test_settings: Settings, db: Database
) -> None:
    await add_region(db)
    path = tmp_path / "creators.csv"
    path.write_text(CSV)
    seen: list[tuple[int, int]] = []
    report = await import_file(test_settings, path, lambda done, total: seen.append((done, total)))
    assert report.rows == 8 and report.imported == 3 and report.bad_rows == 5
    by_line = {e.row: (e.column, e.message) for e in report.errors}
    assert by_line[3][0] == "contact_url" and "not an email" in by_line[3][1]
    assert by_line[4] == ("region_code", "unknown region 'NOWHERE'")
    assert by_line[5][0] == "platform"
    assert "phone" in by_line[6][1]
    assert by_line[8][0] == "handle"
    assert seen[-1] == (3, 3)
    async with db.session() as session:
        rows = list(await session.scalars(select(Creator).order_by(Creator.external_id)))
    assert [(c.platform, c.external_id, c.handle) for c in rows] == [
        ("x", "2244994945", "xdev"),
        ("youtube", "UCabc", "chan"),
        ("mock", "u1", "one"),
    ]
    # Running it again updates, never duplicates.
    again = await import_file(test_settings, path)
    assert again.imported == 3
    async with db.session() as session:
        assert len(list(await session.scalars(select(Creator)))) == 3


async def test_import_refuses_a_file_without_required_columns(
    tmp_path: Path, test_settings: Settings
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,followers\nx,1\n")
    try:
        await import_file(test_settings, path)
    except ImportFileError as exc:
        assert "missing column(s) platform, external_id, handle" in str(exc)
    else:
        raise AssertionError("a file without the required columns was accepted")


async def test_import_command_exit_code_and_error_report(
    tmp_path: Path, test_settings: Settings, db: Database
) -> None:
    await add_region(db)
    path = tmp_path / "creators.csv"
    path.write_text(CSV)
    errors = tmp_path / "errors.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "console.cli",
            "creators",
            "import",
            str(path),
            "--errors",
            str(errors),
        ],
        env=engine_env(test_settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "8 row(s): 3 imported, 5 refused" in done.stderr
    assert "line 4: region_code: unknown region 'NOWHERE'" in done.stderr
    assert errors.read_text().splitlines()[0] == "line,column,error"
