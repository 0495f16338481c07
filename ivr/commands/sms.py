"""Text messages and reminder calls the line sends.

    ivr sms send-pending [--limit N]   (sends what is due; run every minute from a timer)
    ivr remind --period YYYY-MM [--region R] [--dry-run] [--call]   (queues reminders; --dry-run counts them)

Receipts are written to the outbox in the transaction that ends a call; this command sends them
through Twilio's Messages API (``IVR_SMS_FROM``, ``IVR_TWILIO_ACCOUNT_SID``, ``IVR_TWILIO_AUTH_TOKEN``),
retrying a failed one later with a longer wait, and asks Twilio to report delivery to
``<IVR_PUBLIC_URL>/sms/status``. Reminder calls (``ivr remind --call``) wait in the same outbox and
are placed by the same command through Twilio's Calls API from ``IVR_CALL_FROM``.
"""
from __future__ import annotations

import click

from grammars.plural import english

from . import migrated_sessions


@click.group("sms")
def sms_group() -> None:
    """Text messages (receipts after calls, reminders) and reminder calls."""


@sms_group.command("send-pending")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Messages sent, and reminder calls placed, at most in this run.")
def send_pending_cmd(limit: int) -> None:
    """Send the text messages that are due, and place the reminder calls that are due (with
    IVR_CALL_FROM set); print how many went out, will be retried, failed."""
    from twilio.rest import Client

    from ..config import load_config
    from ..prompts import Prompts
    from ..sms.outbox import place_pending_calls, send_pending
    from ..twilio_routes import TwilioRoutes

    config = load_config()
    if not (config.sms_from or config.call_from):
        raise click.ClickException("IVR_SMS_FROM is not set: no number to send text messages from "
                                   "(nor IVR_CALL_FROM, to place reminder calls from)")
    if not (config.twilio_account_sid and config.twilio_auth_token):
        raise click.ClickException("sending text messages and placing calls needs IVR_TWILIO_ACCOUNT_SID and "
                                   "IVR_TWILIO_AUTH_TOKEN")
    if config.call_from and not config.public_url:
        raise click.ClickException("IVR_CALL_FROM is set but IVR_PUBLIC_URL is not: Twilio would have no URL "
                                   "to fetch when a reminder call is answered")
    sessions = migrated_sessions(config)
    client = Client(config.twilio_account_sid, config.twilio_auth_token)
    if config.sms_from:
        callback = TwilioRoutes(config.public_url).sms_status() if config.public_url else None
        counts = send_pending(sessions, config, Prompts(config.prompts_dir), client, status_callback=callback,
                              limit=limit)
        click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))
    if config.call_from:
        counts = place_pending_calls(sessions, config, client, limit=limit)
        click.echo("calls: " + " ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("remind")
@click.option("--period", required=True, help="Billing period YYYY-MM whose readings are missing.")
@click.option("--region", "region_code", default=None, help="Only this region (its code).")
@click.option("--dry-run", is_flag=True, help="Count the reminders per region; queue nothing.")
@click.option("--call", "by_call", is_flag=True,
              help="Reminder calls (from IVR_CALL_FROM) instead of text messages.")
def remind_cmd(period: str, region_code: str | None, dry_run: bool, by_call: bool) -> None:
    """Queue one SMS reminder per account with no reading yet for PERIOD while its submission window
    is open: phone on file, not opted out, never twice for a period, not in quiet hours (21:00-09:00
    region time). ``ivr sms send-pending`` sends them at IVR_SMS_RATE_PER_SECOND. With --call, one
    reminder call per account instead (tracked apart from the texts), placed by ``ivr sms
    send-pending`` at IVR_CALL_RATE_PER_SECOND; the callee can give the readings there and then."""
    import re

    from readings_store.db import transaction
    from readings_store.sms import plan_reminders

    from ..config import load_config

    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", period):
        raise click.BadParameter(f"{period!r} is not a period like 2026-11", param_hint="--period")
    config = load_config()
    if by_call and not dry_run:
        missing = [name for name, value in (("IVR_CALL_FROM", config.call_from),
                                            ("IVR_TWILIO_ACCOUNT_SID", config.twilio_account_sid),
                                            ("IVR_TWILIO_AUTH_TOKEN", config.twilio_auth_token),
                                            ("IVR_PUBLIC_URL", config.public_url)) if not value]
        if missing:
            raise click.ClickException(f"reminder calls need {', '.join(missing)}: nothing queued")
    try:
        with transaction(migrated_sessions(config)) as db:
            plan = plan_reminders(db, period, country_languages=config.country_languages, region_code=region_code,
                                  dry_run=dry_run, kind="call" if by_call else "reminder")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for code, count in plan.counts.items():
        click.echo(f"{code}\t{count}")
    for code, why in plan.skipped.items():
        click.echo(f"{code}\tskipped: {why}")
    what = english(plan.total, "reminder call", "reminder calls") if by_call else \
        english(plan.total, "reminder", "reminders")
    click.echo(f"{'would queue' if dry_run else 'queued'} {plan.total} {what} for {period}")


def register(cli):
    """Add this module's commands to the ``ivr`` group."""
    cli.add_command(sms_group)
    cli.add_command(remind_cmd)
