"""`creatordeck`: one command line for every process (see the Procfile)."""

from __future__ import annotations

import asyncio
import sys

import click

from storage.settings import get_settings


def _settings(start_embedded: bool = True):  # type: ignore[no-untyped-def]
    from console.environment import EnvironmentError_, resolve

    try:
        return resolve() if start_embedded else get_settings()
    except EnvironmentError_ as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(package_name="creatordeck")
def main() -> None:
    """creatordeck: track creators, publish posts, run experiments, and operate it all."""


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (alembic upgrade heads)."""
    import migrations

    settings = _settings()
    click.echo("migrating …", err=True)
    migrations.upgrade(settings.database_url)
    click.echo("database is up to date", err=True)


@main.command()
@click.option("--demo", is_flag=True, help="also add fast-firing demo regions")
def seed(demo: bool) -> None:
    """Insert the starting regions (idempotent: existing rows are left as edited)."""
    from console.seeding import run_seed

    inserted = asyncio.run(run_seed(_settings(), demo=demo))
    click.echo(f"seeded {inserted} new region(s)", err=True)


@main.command()
@click.option(
    "--role",
    type=click.Choice(["all", "worker", "scheduler"]),
    default="all",
    show_default=True,
    help="run the worker, the scheduler, or both",
)
@click.option("--check", is_flag=True, help="health check for containers: exit 0 when healthy")
def engine(role: str, check: bool) -> None:
    """Run the headless engine (arq worker + region scheduler); JSON logs on stdout."""
    from engine import logs
    from engine.runner import Role, run_engine
    from engine.runner import check as check_engine

    settings = _settings()
    if check:
        ok, detail = asyncio.run(check_engine(settings))
        click.echo(detail, err=not ok)
        sys.exit(0 if ok else 1)
    logs.configure(settings.log_level)
    sys.exit(asyncio.run(run_engine(settings, Role(role))))


@main.command()
@click.option("--read-only", is_flag=True, help="look, never edit")
def console(read_only: bool) -> None:
    """Open the terminal console."""
    from console.app import CreatordeckApp

    CreatordeckApp(_settings(), read_only=read_only).run()


@main.command()
def demo() -> None:
    """Everything locally: embedded servers, migrations, demo data, engine, and the console."""
    from console.demo import run_demo

    sys.exit(run_demo())


if __name__ == "__main__":
    main()
