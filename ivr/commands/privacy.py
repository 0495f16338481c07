"""Callers' personal data: recordings kept no longer than needed, and a caller's number erased.

    ivr recordings purge [--dry-run]   (deletes the recordings that are due; run by deploy/ivr-sms.timer)
    ivr privacy erase --phone E164     (removes a number from calls, texts and the outbox, deletes its recordings)
"""
from __future__ import annotations

import click

from . import migrated_sessions


@click.group("recordings")
def recordings_group() -> None:
    """Callers' recorded answers."""


@recordings_group.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count what is due.")
def purge_cmd(dry_run: bool) -> None:
    """Delete the recordings that are due: IVR_RECORDINGS_KEEP_DAYS after the call's last review
    item was decided or, for a call without one, after the call."""
    from ..config import load_config
    from ..ops.recordings import purge

    config = load_config()
    done = purge(migrated_sessions(config), config.recordings_dir, config.recordings_keep_days, dry_run=dry_run)
    verb = "due" if dry_run else "deleted"
    click.echo(f"{done.recordings} recording(s) of {done.calls} call(s) {verb} "
               f"(kept {config.recordings_keep_days} days after the decision or the call)")


@click.group("privacy")
def privacy_group() -> None:
    """A caller's personal data."""


@privacy_group.command("erase")
@click.option("--phone", required=True, metavar="E164", help="The number to erase, e.g. +37369123456.")
def erase_cmd(phone: str) -> None:
    """Remove PHONE from calls, text messages and the outbox, and delete its recordings. Readings
    stay, with the caller shown as erased. Audited (without the number)."""
    from readings_store.db import transaction

    from ..config import load_config
    from ..ops.privacy import PhoneError, erase

    config = load_config()
    sessions = migrated_sessions(config)
    try:
        with transaction(sessions) as session:
            report = erase(session, config.recordings_dir, phone)
    except PhoneError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.line())


def register(cli):
    cli.add_command(recordings_group)
    cli.add_command(privacy_group)
