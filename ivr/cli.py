"""The ``ivr`` command. Each area registers its sub-commands from a module in ``ivr/commands/``."""
from __future__ import annotations

import importlib

import click

# Modules under ivr/commands/ that define ``register(cli)``.
COMMAND_MODULES = ("core", "parse_number_cmd", "speech", "console", "billing", "prompts", "regions", "media", "sms",
                   "calls", "privacy")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Meter-reading voice robot."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"ivr.commands.{_name}").register(cli)


def main() -> None:
    from .config import ConfigError

    try:
        cli(standalone_mode=True)
    except ConfigError as exc:  # a bad IVR_ setting: say which, without a traceback
        raise SystemExit(f"configuration error: {exc}") from None
