"""The transaction rule (storage/database.py): query functions never commit, the caller owns
the transaction, and only the named hot paths use autocommit sessions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.database import AUTOCOMMIT_CALLERS, Database

ROOT = Path(__file__).resolve().parents[1].parent
QUERIES = ROOT / "storage" / "queries"


def _calls(path: Path) -> list[tuple[str, int, int]]:
    """(attribute name, line, number of arguments) of every `x.name(...)` call in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (node.func.attr, node.lineno, len(node.args) + len(node.keywords))
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]


def _query_modules() -> list[Path]:
    return sorted(path for path in QUERIES.rglob("*.py"))


def test_query_functions_never_commit_or_roll_back() -> None:
    modules = _query_modules()
    assert {"creators", "publishing", "experiments"} <= {p.parent.name for p in modules}
    found = [
        f"{path.relative_to(ROOT)}:{line} .{name}()"
        for path in modules
        for name, line, _ in _calls(path)
        if name in ("commit", "rollback")
    ]
    assert found == [], "query functions never end the caller's transaction"


def test_only_the_named_hot_paths_use_autocommit_sessions() -> None:
    users = {
        str(path.relative_to(ROOT))
        for package in ("console", "engine", "storage", "bench")
        for path in (ROOT / package).rglob("*.py")
        # `db.autocommit()` takes no argument (publishing.autocommit(engine) is its own, named
        # in the same docstring).
        if any(name == "autocommit" and argc == 0 for name, _, argc in _calls(path))
    }
    assert users <= set(AUTOCOMMIT_CALLERS), "list a new one in storage/database.py, with why"
    assert users, "the scan finds the hot paths"


async def test_a_transaction_commits_at_the_end_and_rolls_back_on_error(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE tx_rule_probe (n int)"))
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO tx_rule_probe VALUES (1)"))
            raise RuntimeError("half way")
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO tx_rule_probe VALUES (2)"))
    try:
        async with db.session() as session:
            rows = list(await session.scalars(text("SELECT n FROM tx_rule_probe")))
        assert rows == [2]
    finally:
        async with db.transaction() as session:
            await session.execute(text("DROP TABLE tx_rule_probe"))


async def test_a_read_session_keeps_nothing_it_writes(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE tx_rule_read (n int)"))
    try:
        async with db.session() as session:
            await session.execute(text("INSERT INTO tx_rule_read VALUES (1)"))
        async with db.session() as session:
            assert await session.scalar(text("SELECT count(*) FROM tx_rule_read")) == 0
    finally:
        async with db.transaction() as session:
            await session.execute(text("DROP TABLE tx_rule_read"))
