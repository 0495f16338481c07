"""Text messages the line sends.

    ivr sms send-pending [--limit N]   (sends the receipts that are due; run every minute from a timer)

Receipts are written to the outbox in the transaction that ends a call; this command sends them
through Twilio's Messages API (``IVR_SMS_FROM``, ``IVR_TWILIO_ACCOUNT_SID``, ``IVR_TWILIO_AUTH_TOKEN``),
retrying a failed one later with a longer wait, and asks Twilio to report delivery to
``<IVR_PUBLIC_URL>/sms/status``.
"""
from __future__ import annotations

import click

from . import migrated_sessions


@click.group("sms")
def sms_group() -> None:
    """Text messages: receipts after calls."""


@sms_group.command("send-pending")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Messages sent at most in this run.")
def send_pending_cmd(limit: int) -> None:
    """Send the text messages that are due; print how many were sent, will be retried, failed."""
    from twilio.rest import Client

    from ..config import load_config
    from ..prompts import Prompts
    from ..sms import send_pending

    config = load_config()
    if not config.sms_from:
        raise click.ClickException("IVR_SMS_FROM is not set: no number to send text messages from")
    if not (config.twilio_account_sid and config.twilio_auth_token):
        raise click.ClickException("sending text messages needs IVR_TWILIO_ACCOUNT_SID and IVR_TWILIO_AUTH_TOKEN")
    callback = config.public_url.rstrip("/") + "/sms/status" if config.public_url else None
    counts = send_pending(migrated_sessions(config), config, Prompts(config.prompts_dir),
                          Client(config.twilio_account_sid, config.twilio_auth_token),
                          status_callback=callback, limit=limit)
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


def register(cli):
    """Add this module's commands to the ``ivr`` group."""
    cli.add_command(sms_group)
