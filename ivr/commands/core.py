"""Core commands: database, records import, demo data, the web server and a simulated call."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from grammars.plural import english

from ..config import ensure_dev_auth_token, load_config
from . import migrated_transaction, require_schema


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to the latest version."""
    from readings_store.db import upgrade

    config = load_config()
    upgrade(config.database_url, revision)
    click.echo(f"database at {_safe_url(config.database_url)} is at revision {revision}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Apply the good rows even if some rows are bad.")
def import_cmd(csv_file: Path, skip_bad: bool) -> None:
    """Import accounts and meters from CSV (one row per meter)."""
    import time

    from readings_store.importer import import_rows, read_csv

    config = load_config()
    started = time.perf_counter()
    progress, total = _progress_bars(csv_file)
    with migrated_transaction(config) as session:
        try:
            with csv_file.open(encoding="utf-8", newline="") as stream:
                report = import_rows(session, read_csv(stream), skip_bad=skip_bad, progress=progress, total=total)
        except UnicodeDecodeError as exc:
            raise click.ClickException(f"{csv_file} is not UTF-8 text: {exc}; nothing was imported") from None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        for error in report.errors:
            click.echo(f"error: {error}", err=True)
        if report.errors and not skip_bad:
            session.rollback()
            raise click.ClickException(
                f"{len(report.errors)} bad {english(len(report.errors), 'row', 'rows')} of {report.rows}; nothing was "
                "imported (use --skip-bad to apply the good rows)"
            )
    for code in report.regions_created:
        key = report.region_keys[code]
        click.echo(f"created region {code} with menu key {key}" if key is not None
                   else f"created region {code} without a menu key (every key 1-99 is taken)")
    seconds = time.perf_counter() - started
    click.echo(
        f"imported {report.applied} of {report.rows} {english(report.rows, 'row', 'rows')}: accounts "
        f"{report.accounts_created} new, "
        f"{report.accounts_updated} updated; meters {report.meters_created} new, {report.meters_updated} updated; "
        f"phones {report.phones_added} new"
        + (f"; skipped {len(report.errors)} bad {english(len(report.errors), 'row', 'rows')}" if report.errors else "")
        + f" ({seconds:.1f} s)"
    )


def _progress_bars(csv_file: Path):
    """Progress bars (rows/s) on a terminal; nothing when output goes to a file or a pipe."""
    if not (sys.stderr.isatty() and sys.stdout.isatty()):
        return None, None
    from tqdm import tqdm

    with csv_file.open("rb") as stream:  # line count, for the bar's total
        lines = sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))

    def bar(description: str, total: int | None):
        return tqdm(desc=description, total=total, unit=" rows", unit_scale=True, dynamic_ncols=True, leave=False)

    return bar, max(lines - 1, 0)


@click.command("demo-data")
@click.option("--accounts", default=750, show_default=True, help="Accounts per region.")
def demo_data(accounts: int) -> None:
    """Load demo regions, accounts, meters and previous readings, and print some to try."""
    from readings_store.demo import load_demo

    with migrated_transaction() as session:
        samples = load_demo(session, accounts_per_region=accounts)
    click.echo("Accounts to try (region, keys to type, meters):")
    for region, number, meters in samples:
        click.echo(f"  {region:<14} {number:<14} {meters}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web server (development server; use gunicorn in production, see README)."""
    from ..app import create_app
    from ..ops.logs import configure
    from ..twilio_routes import TwilioRoutes

    config = load_config()
    configure(config.log_format or "text")
    require_schema(config)
    if not config.twilio_auth_token:
        ensure_dev_auth_token(config.data_dir)
        config = load_config()
        click.echo("warning: IVR_TWILIO_AUTH_TOKEN is not set; a local development token was created in "
                   f"{config.data_dir}. Real Twilio requests are rejected until you set it.", err=True)
    app = create_app(config)
    urls = TwilioRoutes(config.public_url or f"http://{host}:{port}")
    click.echo(f"Voice webhook (A call comes in, HTTP POST): {urls.incoming()}")
    click.echo(f"Status callback URL:                        {urls.status()}")
    click.echo(f"Primary handler fails (fallback):           {urls.fallback()}")
    click.echo(f"Try a call:                                 {ivr_command()} call --url http://{host}:{port}")
    run_development_server(app, host, port)


def ivr_command() -> str:
    """How to type this installation's ``ivr`` from the current folder: ``.venv/bin/ivr`` in a
    checkout (as the README writes it), else plain ``ivr`` when that is the one on the PATH, else
    its full path."""
    import shutil

    script = Path(sys.executable).parent / "ivr"
    if not script.exists():
        return "ivr"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return "ivr" if shutil.which("ivr") == str(script) else str(script)


def run_development_server(app, host: str, port: int) -> None:
    """Serve ``app`` with werkzeug's server until Ctrl+C. Started by hand rather than with
    ``app.run`` so that its banner (two lines in one log record, coloured with terminal escapes)
    is replaced by one plain line."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    click.echo(f"Serving on http://{host}:{server.port} with the development server (use gunicorn in "
               "production, see the README); Ctrl+C stops it.")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command("check")
def check() -> None:
    """Check an installation before it takes calls: one line per check, exit status 1 on any ✗."""
    from ..ops.checks import run_all

    results = run_all(load_config())
    for result in results:
        click.echo(result.line())
    failed = [r for r in results if not r.ok]
    if failed:
        click.echo(f"{len(failed)} of {len(results)} {english(len(results), 'check', 'checks')} failed", err=True)
        raise SystemExit(1)
    click.echo(f"all {len(results)} checks passed")


@click.command("call")
@click.option("--url", default=None, help="Base URL of a running server; in process if omitted.")
@click.option("--from", "caller", default="+37360000000", show_default=True, help="Caller ID (or 'anonymous').")
@click.option("--keys", default=None,
              help="Scripted answers separated by spaces, e.g. '4 1000001# 1 12345# 1 3'; '-' is silence.")
def call(url: str | None, caller: str, keys: str | None) -> None:
    """Play a phone call, signed like Twilio, printing each prompt."""
    from ..voice.simulator import CallError, SimulatedCall, flask_transport, http_transport

    config = load_config()
    token = config.twilio_auth_token or ensure_dev_auth_token(config.data_dir)
    if url:
        transport, base = http_transport(), url
    else:
        from ..app import create_app

        require_schema(config)
        config.twilio_auth_token = token
        transport, base = flask_transport(create_app(config).test_client()), "http://localhost"
    sim = SimulatedCall(base, token, transport, caller=caller)
    script = keys.split() if keys is not None else None
    try:
        prompt = sim.start()
        while True:
            for text in prompt.texts:
                click.echo(f"robot: {text}")
            if prompt.gather is None:
                click.echo(f"[call ended: {prompt.ended}]")
                break
            if script is not None:
                if not script:
                    click.echo("[script finished; hanging up]")
                    break
                answer = script.pop(0)
                click.echo(f"you:   {answer}")
            else:
                answer = click.prompt("you (keys, empty for silence)", default="", show_default=False)
            prompt = sim.press("" if answer == "-" else answer)
        sim.hang_up()
    except CallError as exc:
        raise click.ClickException(str(exc)) from None


def register(cli) -> None:
    for command in (db_group, import_cmd, demo_data, serve, check, call):
        cli.add_command(command)
