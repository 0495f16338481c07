"""Billing integration commands: API tokens and exports.

    ivr api-tokens create NAME --scope read|write [--regions CODE,…] [--utilities NAME,…]
                                                    (prints the token once, alone on the last line)
    ivr api-tokens list
    ivr api-tokens revoke NAME-or-ID
    ivr export [--format csv|json] [--region R] [--period P] [--limit N] [--output FILE] [--ack]
    ivr export show ID [--format csv|json] [--output FILE]   (re-write an existing batch)
    ivr export list [--all]                                   (unacknowledged batches; --all: every batch)
    ivr export ack ID

``ivr export`` creates a batch exactly as ``POST /api/v1/exports`` does, writes it (to a temporary
file renamed into place, so a crash never leaves half a file), and acknowledges it only with
``--ack`` after the file is complete. Without ``--ack`` acknowledge later with ``ivr export ack ID``
once the billing system has loaded the file; until then ``ivr export list`` shows it and
``ivr export show ID`` writes it again, identically.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from grammars.plural import english

from . import migrated_sessions


@click.group("api-tokens")
def tokens_group() -> None:
    """Bearer tokens of billing API clients (stored hashed; shown once when created)."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True,
              help="read: GET endpoints; write: also exports, acknowledgements and account pushes.")
@click.option("--regions", multiple=True, metavar="CODE,…",
              help="See only readings and meters of these regions (default: every region).")
@click.option("--utilities", multiple=True, metavar="NAME,…",
              help="See only readings and meters of these utilities (default: every utility).")
def tokens_create(name: str, scope: str, regions: tuple[str, ...], utilities: tuple[str, ...]) -> None:
    """Create a token for client NAME; the token is printed once, alone on the last line.

    With --regions and/or --utilities the token sees only that part of the readings: every list,
    read, export and acknowledgement is filtered by it (one supplier's billing system)."""
    from readings_store import token_views
    from readings_store.db import transaction

    from ..api import tokens

    with transaction(migrated_sessions()) as session:
        try:
            view = token_views.parse(session, regions or None, utilities or None)
            client, token = tokens.create(session, name, scope, view)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        seen = token_views.describe(session, view)
    click.echo(f"created API token {client.name!r} (id {client.id}, scope {client.scope}, "
               f"prefix {client.token_prefix}, sees {seen})", err=True)
    click.echo("store it now: it cannot be shown again", err=True)
    click.echo(token)


@tokens_group.command("list")
def tokens_list() -> None:
    """All tokens: id, name, scope, prefix, created, last used, revoked, what it sees (never the token itself)."""
    from readings_store import token_views

    from ..api import tokens

    session = migrated_sessions()()
    try:
        clients = tokens.all_clients(session)
        seen = {c.id: token_views.describe(session, token_views.of_client(c)) for c in clients}
    finally:
        session.close()
    if not clients:
        click.echo("no API tokens")
        return
    click.echo(f"{'id':>4}  {'name':<24} {'scope':<5} {'prefix':<12}  {'created':<20} {'last used':<20} "
               f"{'revoked':<20} sees")
    for c in clients:
        fmt = lambda t: f"{t:%Y-%m-%d %H:%M:%S}" if t else "-"  # noqa: E731
        click.echo(f"{c.id:>4}  {c.name:<24} {c.scope:<5} {c.token_prefix:<12}  {fmt(c.created_at):<20} "
                   f"{fmt(c.last_used_at):<20} {fmt(c.revoked_at):<20} {seen[c.id]}")


@tokens_group.command("revoke")
@click.argument("name_or_id")
def tokens_revoke(name_or_id: str) -> None:
    """Revoke the active token named NAME_OR_ID (or the token with that id)."""
    from readings_store.db import transaction

    from ..api import tokens

    with transaction(migrated_sessions()) as session:
        try:
            client, changed = tokens.revoke(session, name_or_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{'revoked' if changed else 'already revoked:'} API token {client.name!r} (id {client.id}, "
               f"prefix {client.token_prefix})")


def _write_batch(session, batch, fmt: str, output: Path | None) -> None:
    from readings_store import export

    def chunks():
        if fmt == "csv":
            yield from export.csv_rows(export.READING_FIELDS, export.batch_documents(session, batch.id, rows=True))
            return
        head = json.dumps(export.batch_summary(batch), ensure_ascii=False)
        yield head[:-1] + ', "readings": [\n'
        first = True
        for item in export.batch_readings(session, batch.id):
            yield ("" if first else ",\n") + json.dumps(item, ensure_ascii=False)
            first = False
        yield "\n]}\n"

    if output is None or str(output) == "-":
        for chunk in chunks():
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return
    output = output.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for chunk in chunks():
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ack(sessions, batch_id: int) -> None:
    from readings_store import export
    from readings_store.db import transaction
    from readings_store.service import audit

    with transaction(sessions) as session:
        before = export.get_batch(session, batch_id)
        if before is None:
            raise click.ClickException(f"no export batch {batch_id}")
        first = before.acknowledged_at is None
        batch = export.acknowledge(session, batch_id)
        if first:
            audit(session, actor_kind="system", action="export.ack", entity="export_batch", entity_id=batch_id,
                  after={"count": batch.reading_count})
    click.echo(f"export batch {batch_id} acknowledged" + ("" if first else " (already was)"), err=True)


FORMAT = click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
OUTPUT = click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
                      help="File to write (atomically); default: standard output.")


@click.group("export", invoke_without_command=True)
@FORMAT
@click.option("--region", help="Only readings of this region (code).")
@click.option("--period", help="Only readings of this billing period (YYYY-MM).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), help="At most this many readings (lowest ids first).")
@OUTPUT
@click.option("--ack", is_flag=True, help="Acknowledge the batch once the file is completely written.")
@click.pass_context
def export_group(ctx, fmt: str, region: str | None, period: str | None, limit: int | None, output: Path | None,
                 ack: bool) -> None:
    """Export accepted readings not exported before into a new batch and write it.

    Exits 0 with "nothing to export" on standard error (and writes no file) when there is nothing new;
    exits 1, writing nothing, when another transaction holds every reading there is to export.
    """
    if ctx.invoked_subcommand is not None:
        return
    from readings_store import export, token_views
    from readings_store.db import transaction
    from readings_store.models import Region
    from readings_store.service import audit

    try:
        region = export.check_region(region) if region is not None else None
        period = export.check_period(period) if period is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    sessions = migrated_sessions()
    with transaction(sessions) as session:
        if region is not None and session.query(Region.id).filter(Region.code == region).first() is None:
            raise click.BadParameter(f"no region with code {region!r}", param_hint="--region")
        try:
            # Readings that a limited token exports are that token's (token_views).
            batch = export.create_batch(session, region=region, period=period, limit=limit,
                                        view=token_views.for_export(session, token_views.EVERYTHING))
        except export.ExportBusy as exc:
            raise click.ClickException(str(exc)) from None
        if batch is not None:
            audit(session, actor_kind="system", action="export.create", entity="export_batch", entity_id=batch.id,
                  after={"count": batch.reading_count, "region": region, "period": period})
    if batch is None:
        click.echo("nothing to export", err=True)
        return
    click.echo(f"export batch {batch.id}: {batch.reading_count} {english(batch.reading_count, 'reading', 'readings')}",
               err=True)
    session = sessions()
    try:
        _write_batch(session, batch, fmt, output)
    finally:
        session.close()
    if ack:
        _ack(sessions, batch.id)
    else:
        click.echo(f"acknowledge it once delivered: ivr export ack {batch.id}", err=True)


@export_group.command("ack")
@click.argument("batch_id", type=click.IntRange(1))
def export_ack(batch_id: int) -> None:
    """Mark batch BATCH_ID delivered (idempotent)."""
    _ack(migrated_sessions(), batch_id)


@export_group.command("show")
@click.argument("batch_id", type=click.IntRange(1))
@FORMAT
@OUTPUT
def export_show(batch_id: int, fmt: str, output: Path | None) -> None:
    """Write an existing batch again (same content every time)."""
    from readings_store import export

    session = migrated_sessions()()
    try:
        batch = export.get_batch(session, batch_id)
        if batch is None:
            raise click.ClickException(f"no export batch {batch_id}")
        _write_batch(session, batch, fmt, output)
    finally:
        session.close()


@export_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Acknowledged batches too.")
def export_list(show_all: bool) -> None:
    """Unacknowledged export batches (to resume after a crash), with the view each belongs to."""
    from readings_store import export, token_views

    session = migrated_sessions()()
    try:
        after, rows = 0, []
        while True:
            page, more = export.list_batches(session, acknowledged=None if show_all else False, after_id=after,
                                             limit=1000)
            rows += page
            if not more:
                break
            after = page[-1].id
        views = {key: token_views.describe_key(session, key) for key in {b.view for b in rows}}
    finally:
        session.close()
    if not rows:
        click.echo("no export batches" if show_all else "no unacknowledged export batches")
        return
    for b in rows:
        s = export.batch_summary(b)
        click.echo(f"{s['id']:>6}  {s['created_at']}  {s['count']:>8} {english(s['count'], 'reading ', 'readings')}  "
                   f"region={s['region_code'] or '*'} "
                   f"period={s['period'] or '*'}  acknowledged={s['acknowledged_at'] or 'no'}  view: {views[b.view]}")


def register(cli):
    """Add this module's commands to the ``ivr`` group."""
    cli.add_command(tokens_group)
    cli.add_command(export_group)
