"""Calls the line has answered.

    ivr calls sweep [--limit N]   (ends calls whose end was never reported; run every minute from a timer)
"""
from __future__ import annotations

import click

from . import migrated_sessions


@click.group("calls")
def calls_group() -> None:
    """Calls answered by the line."""


@calls_group.command("sweep")
@click.option("--limit", type=click.IntRange(1, 100000), default=1000, show_default=True,
              help="Calls ended at most in this run (the next run takes the rest).")
def sweep_cmd(limit: int) -> None:
    """End the calls with no activity for IVR_CALL_IDLE_MINUTES that Twilio never reported ended
    (their status callback was lost): each gets its outcome (hung up at the step it was at, if its
    dialog had not ended), its end time (its last activity) and its SMS receipt, as at a hang-up.
    Run every minute by deploy/ivr-sms.timer; print how many were ended."""
    import datetime as dt

    from ..calls import sweep_idle_calls
    from ..config import load_config

    config = load_config()
    with migrated_sessions(config)() as session:
        ended = sweep_idle_calls(session, dt.timedelta(minutes=config.call_idle_minutes), limit=limit)
    click.echo(f"ended={len(ended)} (calls idle for {config.call_idle_minutes} minutes without a reported end)")


def register(cli):
    """Add this module's commands to the ``ivr`` group."""
    cli.add_command(calls_group)
