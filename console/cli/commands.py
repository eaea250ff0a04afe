"""`creatordeck`: one command line for every process (see the Procfile)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from console.cli.connections import connections
from console.cli.operators import operators, teams
from console.cli.preflight import check_encryption_key, plain_settings, settings_or_exit
from console.cli.regions import regions


@click.group()
@click.version_option(package_name="creatordeck")
def main() -> None:
    """creatordeck: track creators, publish posts, run experiments, and operate it all."""


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (alembic upgrade heads)."""
    import migrations

    settings = settings_or_exit()
    click.echo("migrating …", err=True)
    migrations.upgrade(settings.database_url)
    click.echo("database is up to date", err=True)


@main.command()
@click.option("--demo", is_flag=True, help="also add fast-firing demo regions")
def seed(demo: bool) -> None:
    """Insert the starting regions (idempotent: existing rows are left as edited)."""
    from console.demo.seeding import run_seed

    inserted = asyncio.run(run_seed(settings_or_exit(), demo=demo))
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
    from engine import gc_policy, logs
    from engine.runner import Role, run_engine
    from engine.runner import check as check_engine

    settings = settings_or_exit()
    if check:
        ok, detail = asyncio.run(check_engine(settings))
        click.echo(detail, err=not ok)
        sys.exit(0 if ok else 1)
    logs.configure(settings.log_level)
    from storage.queries.key_check import KeyCheckFailed

    gc_policy.apply()  # this process is an engine from here on: its start-up heap is frozen
    try:
        sys.exit(asyncio.run(run_engine(settings, Role(role))))
    except KeyCheckFailed as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--read-only", is_flag=True, help="look, never edit (with --serve-ssh: every key)")
@click.option(
    "--serve-ssh",
    "serve_ssh",
    metavar="HOST:PORT",
    default=None,
    help="serve the console to SSH clients instead (one console per connection)",
)
@click.option(
    "--authorized-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="public keys allowed in (OpenSSH format; `read-only` option per key) "
    "[default: ~/.config/creatordeck/authorized_keys]",
)
@click.option(
    "--host-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the server's private host key, created if missing "
    "[default: ~/.config/creatordeck/ssh_host_ed25519_key]",
)
@click.option("--ssh-max-sessions", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--ssh-allow-remote", is_flag=True, help="allow a non-loopback --serve-ssh address")
def console(
    read_only: bool,
    serve_ssh: str | None,
    authorized_keys: Path | None,
    host_key: Path | None,
    ssh_max_sessions: int,
    ssh_allow_remote: bool,
) -> None:
    """Open the terminal console (or serve it over SSH with --serve-ssh)."""
    if authorized_keys is not None:
        # The Operators screen lists this file's keys (console.data.operators); the consoles
        # `--serve-ssh` starts inherit our environment.
        os.environ["CREATORDECK_AUTHORIZED_KEYS"] = str(authorized_keys.resolve())
    if serve_ssh is not None:
        from console.ssh import server as ssh
        from engine import logs

        settings = settings_or_exit()
        check_encryption_key(settings)
        logs.configure(settings.log_level)
        try:
            host, port = ssh.parse_address(serve_ssh, ssh_allow_remote)
            options = ssh.ServeOptions(
                authorized_keys=authorized_keys or ssh.DEFAULT_AUTHORIZED_KEYS,
                read_only=read_only,
                max_sessions=ssh_max_sessions,
            )
            asyncio.run(
                ssh.serve_forever(settings, host, port, options, host_key or ssh.DEFAULT_HOST_KEY)
            )
        except ssh.SSHConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    from console.app import CreatordeckApp

    settings = settings_or_exit()
    check_encryption_key(settings)
    CreatordeckApp(settings, read_only=read_only).run()


@main.command()
@click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="the api's port  [default: DEMO_API_PORT, else 8000]",
)
@click.option(
    "--mock-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="the mock platform's port  [default: DEMO_MOCK_PORT, else 8765]",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="the engine's /metrics port, 0: off  [default: METRICS_PORT, else 9108]",
)
def demo(api_port: int | None, mock_port: int | None, metrics_port: int | None) -> None:
    """Everything locally: embedded servers, migrations, demo data, engine, api, mock platform,
    and the console. Checks its ports first and starts nothing if one is taken.

    Quitting stops the background processes, and the embedded servers unless another
    creatordeck process still uses them (it says which). `creatordeck urls` prints their URLs.
    """
    from console.demo.ports import DemoPorts, check_ports

    settings = plain_settings()
    ports = DemoPorts.of(settings, api_port, mock_port, metrics_port)
    check_ports(ports)  # before the console's imports: a taken port is reported at once
    from console.demo.supervisor import run_demo

    sys.exit(run_demo(settings, ports))


@main.command()
def urls() -> None:
    """Print DATABASE_URL=… and REDIS_URL=… of the embedded servers running in DATA_DIR
    (e.g. under `creatordeck demo`), shell-quoted: `set -a; eval "$(creatordeck urls)"; set +a`.
    Starts nothing; exit 1 when neither is running."""
    import shlex

    from storage.embedded.servers import EmbeddedServers, data_dir

    folder = data_dir(plain_settings().data_dir)
    database_url, redis_url = EmbeddedServers(folder).running_urls()
    for name, url in (("DATABASE_URL", database_url), ("REDIS_URL", redis_url)):
        if url is None:
            click.echo(f"# no embedded {name[:-4].lower()} server is running in {folder}", err=True)
        else:
            click.echo(f"{name}={shlex.quote(url)}")
    if database_url is None and redis_url is None:
        raise click.ClickException(f"no embedded server is running in {folder}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="loopback by default")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--error-rate", default=0.0, show_default=True, help="share of requests → 503")
@click.option("--latency-ms", default=0.0, show_default=True, help="added to every request")
@click.option("--timeout-rate", default=0.0, show_default=True, help="share of requests that hang")
@click.option("--hang-s", default=30.0, show_default=True, help="how long a hanging request hangs")
@click.option("--gone-rate", default=0.0, show_default=True, help="share of accounts → 404")
@click.option("--gone-id", multiple=True, help="an account id answered 404 (repeatable)")
@click.option("--revoked-token", multiple=True, help="a token answered 401 (repeatable)")
@click.option("--rate-limit", default=0, show_default=True, help="requests per window per token")
@click.option("--rate-window-s", default=1.0, show_default=True)
@click.option("--max-batch", default=500, show_default=True, help="ids per batch call")
@click.option("--slot-s", default=60, show_default=True, help="stats change once per slot")
@click.option("--seed", default=0, show_default=True)
def mockstagram(host: str, port: int, **faults: object) -> None:
    """Serve the mock platform API (deterministic growth, ETag, rate limits, fault injection)."""
    from pydantic import ValidationError

    from engine.mock_platform.config import MockConfig
    from engine.mock_platform.server import serve

    values = dict(faults)
    values["gone_ids"] = list(values.pop("gone_id"))  # type: ignore[call-overload]
    values["revoked_tokens"] = list(values.pop("revoked_token"))  # type: ignore[call-overload]
    try:
        config = MockConfig.model_validate(values)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"mockstagram on http://{host}:{port}", err=True)
    serve(config, host, port)


@main.group()
def creators() -> None:
    """Tracked creators: import them from CSV."""


@creators.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write the per-row error report to this CSV file",
)
def creators_import(file: Path, errors_file: Path | None) -> None:
    """Import creators from FILE.csv; bad rows are reported (exit 1), good rows are kept.

    Columns: platform, external_id, handle [, display_name, region, contact_url, status].
    """
    from console.cli.import_creators import ImportFileError, import_file, write_errors

    settings = settings_or_exit()
    with click.progressbar(length=1, label="importing", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        try:
            report = asyncio.run(import_file(settings, file, progress))
        except ImportFileError as exc:
            raise click.ClickException(str(exc)) from exc
    for error in report.errors[:200]:
        click.echo(f"line {error.row}: {error.column}: {error.message}", err=True)
    if len(report.errors) > 200:
        click.echo(f"… and {len(report.errors) - 200} more errors", err=True)
    if errors_file is not None and report.errors:
        write_errors(errors_file, report.errors)
        click.echo(f"error report written to {errors_file}", err=True)
    click.echo(
        f"{report.rows} row(s): {report.imported} imported, {report.bad_rows} refused", err=True
    )
    sys.exit(1 if report.errors else 0)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", default=8000, show_default=True, type=int, envvar="PORT")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="uvicorn processes  [default: API_WORKERS, else one per CPU core]",
)
def api(host: str, port: int, workers: int | None) -> None:
    """Serve the HTTP API (assignment, events, metrics, /health); JSON logs on stdout."""
    from engine.api.serve import serve, worker_count

    settings = settings_or_exit()
    serve(settings, host, port, worker_count(settings, workers))


@main.command()
@click.option("--window-days", default=14, show_default=True, type=click.IntRange(1, 366))
@click.option(
    "--job",
    "jobs",
    multiple=True,
    type=click.Choice(["daily", "experiments", "funnels"]),
    help="one job (repeatable); default: all three",
)
@click.option("--incremental", is_flag=True, help="recompute only what changed since last run")
@click.option(
    "--check-idempotency",
    is_flag=True,
    help="run the window twice; exit 1 if the second run changes any rollup table",
)
def rollup(
    window_days: int, jobs: tuple[str, ...], incremental: bool, check_idempotency: bool
) -> None:
    """Compute the daily, experiment and funnel rollups of the last N days (see rollup_runs)."""
    from console.cli.rollup import run_rollup_command

    sys.exit(
        run_rollup_command(settings_or_exit(), window_days, jobs, incremental, check_idempotency)
    )


@main.group()
def experiments() -> None:
    """Define experiments (then start, pause and tune them in the console)."""


@experiments.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def experiments_create(file: Path) -> None:
    """Create a draft experiment from a JSON file (key, name, hypothesis, primary_metric,
    variants [{key, name, weight}], optional coverage, seed, funnels [{name, steps}])."""
    from console.cli.experiment_files import create_from_file

    try:
        key = asyncio.run(create_from_file(settings_or_exit(), file))
    except (ValueError, PermissionError) as exc:  # PermissionError: storage.permissions
        raise click.ClickException(str(exc)) from exc
    click.echo(f"experiment {key} created as a draft; start it from the console (s)", err=True)


main.add_command(connections)
main.add_command(operators)
main.add_command(teams)
main.add_command(regions)


if __name__ == "__main__":
    main()
