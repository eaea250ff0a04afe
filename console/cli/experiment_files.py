"""Experiment definitions from files (`creatordeck experiments create FILE`), validated first."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from console.data.acting import acting
from storage.database import Database
from storage.queries import experiments as q
from storage.settings import Settings


def parse_definition(text: str) -> q.ExperimentInput:
    """The definition in a JSON document, or a ValueError that says what is wrong."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc
    try:
        return q.ExperimentInput.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'experiment'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ValueError(problems) from exc


async def create_from_file(settings: Settings, path: Path) -> str:
    # Read (and validate) before touching the database; the CLI runs nothing else meanwhile.
    data = parse_definition(path.read_text(encoding="utf-8"))  # noqa: ASYNC240
    db = Database(settings)
    try:
        async with db.transaction() as session:
            await q.create_experiment(session, data, actor=await acting(session))
    finally:
        await db.dispose()
    return data.key
