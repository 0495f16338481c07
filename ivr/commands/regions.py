"""Regions and their settings: ``ivr regions list|add|set|remove``.

Every setting is checked by ``readings_store.regions`` (the console's Regions page uses the same
checks); a bad one is reported in one line, exits non-zero and changes nothing.

    ivr regions set CHI --menu-key 1 --name-ru Кишинёв --name-en Chisinau --prefixes +37322
    ivr regions set CHI --window cold_water=20-25 --window electricity=15-end --window gas=none
"""
from __future__ import annotations

import click

from ..config import LANGUAGES
from . import migrated_transaction


def _setting_options(func):
    """The options ``add`` and ``set`` share: one per region setting."""
    options = [
        click.option("--name", help="The default name (said when the call's language has none)."),
        *[click.option(f"--name-{lang}", f"name_{lang}", metavar="TEXT",
                       help=f"The name in {lang} ('' removes it).") for lang in LANGUAGES],
        click.option("--menu-key", metavar="1-99|none", help="Key in the phone menu; none: not offered."),
        click.option("--timezone", metavar="ZONE", help="Time zone, like Europe/Chisinau."),
        click.option("--work-days", metavar="DIGITS", help="ISO weekdays operators work, like 12345."),
        click.option("--hours", metavar="HH:MM-HH:MM", help="Operators' working hours, like 08:00-17:00."),
        click.option("--operator", "operator_number", metavar="E164|none", help="Operators' number, like +37322123456."),
        click.option("--prefixes", metavar="LIST|none", help="Caller ID prefixes, like +37322,+37323 (replaces the list)."),
        click.option("--window", "windows", multiple=True, metavar="UTILITY=START-END",
                     help="Submission days for a utility (or all, water), like electricity=15-end or "
                          "cold_water=20-25; =none removes it. Repeatable."),
        click.option("--org-name", "ask_org_name", metavar="yes|no",
                     help="Ask a company's caller to say the organisation's name (recorded for operators)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(kw: dict) -> dict:
    """The settings given on the command line, as the region service takes them."""
    settings = {k: v for k, v in kw.items()
                if v is not None and k in ("name", "menu_key", "timezone", "work_days", "hours", "operator_number",
                                                "ask_org_name")}
    names = {lang: kw[f"name_{lang}"] for lang in LANGUAGES if kw.get(f"name_{lang}") is not None}
    if names:
        settings["names"] = names
    if kw.get("prefixes") is not None:
        settings["phone_prefixes"] = kw["prefixes"]
    if kw.get("windows"):
        settings["windows"] = ";".join(kw["windows"])
    return settings


def _apply(action):
    from readings_store.regions import RegionError

    try:
        with migrated_transaction() as session:
            return action(session)
    except RegionError as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from None


@click.group("regions")
def regions() -> None:
    """Regions: names per language, menu key, hours, operator, submission windows, caller ID prefixes,
    whether a company's caller is asked for the organisation's name."""


@regions.command("list")
def list_cmd() -> None:
    """Every region with every setting, in menu order."""
    from sqlalchemy import func, select

    from readings_store.models import Account
    from readings_store.regions import all_regions, describe

    with migrated_transaction() as session:
        counts = dict(session.execute(select(Account.region_id, func.count()).group_by(Account.region_id)).all())
        rows = [(describe(r), counts.get(r.id, 0)) for r in all_regions(session)]
    if not rows:
        click.echo("no regions yet: import accounts (ivr import) or add one with `ivr regions add CODE --name NAME`")
        return
    header = ("KEY", "CODE", "NAME", "NAMES", "TIMEZONE", "DAYS", "HOURS", "OPERATOR", "PREFIXES", "WINDOWS",
              "ORG NAME", "ACCOUNTS")
    table = [header]
    for d, accounts in rows:
        table.append((
            str(d["menu_key"]) if d["menu_key"] is not None else "-",
            d["code"],
            d["name"],
            "; ".join(f"{lang}={name}" for lang, name in d["names"].items()) or "-",
            d["timezone"],
            d["work_days"],
            f"{d['work_start']}-{d['work_end']}",
            d["operator_number"] or "-",
            ",".join(d["phone_prefixes"]) or "-",
            "; ".join(f"{u}={w}" for u, w in d["windows"].items()) or "-",
            "yes" if d["ask_org_name"] else "no",
            str(accounts),
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if any(d["menu_key"] is None for d, _ in rows):
        click.echo("regions without a key (-) are not offered in the phone menu: give one with "
                   "`ivr regions set CODE --menu-key N`")


@regions.command("add")
@click.argument("code")
@_setting_options
def add(code: str, **kw) -> None:
    """Add a region (offered on the phone once it has a --menu-key)."""
    from readings_store.regions import create_region

    settings = _settings(kw)
    name = settings.pop("name", None) or code
    region = _apply(lambda session: create_region(session, code, name, **settings))
    click.echo(f"region {region.code} added" + (f" with menu key {region.menu_key}" if region.menu_key else
                                                " (not in the phone menu until it has a menu key)"))


@regions.command("set")
@click.argument("code")
@click.option("--code", "new_code", metavar="CODE", help="Rename the region's code.")
@_setting_options
def set_cmd(code: str, new_code: str | None, **kw) -> None:
    """Change settings of a region; those not given stay as they are."""
    from readings_store.regions import get_region, update_region

    settings = _settings(kw)
    if new_code is not None:
        settings["code"] = new_code
    if not settings:
        raise click.ClickException("nothing to change: give at least one setting (see --help)")
    region = _apply(lambda session: update_region(session, get_region(session, code), **settings))
    click.echo(f"region {region.code} updated")


@regions.command("remove")
@click.argument("code")
def remove(code: str) -> None:
    """Delete a region without accounts, calls or review items."""
    from readings_store.regions import get_region, remove_region

    _apply(lambda session: remove_region(session, get_region(session, code)))
    click.echo(f"region {code} removed")


def register(cli):
    """Add this module's commands to the ``ivr`` group."""
    cli.add_command(regions)
