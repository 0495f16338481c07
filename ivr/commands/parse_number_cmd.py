"""``ivr parse-number``: see how the robot would read a spoken number (for tuning and support)."""
from __future__ import annotations

import click

from grammars import LANGUAGES, parse_account, parse_number


def register(cli: click.Group) -> None:
    """Add ``parse-number`` to the ``ivr`` group."""

    @cli.command("parse-number")
    @click.option("--lang", "lang", required=True, type=click.Choice(LANGUAGES),
                  help="Language of the words.")
    @click.option("--account", is_flag=True,
                  help="Read WORDS as an account number (dash words separate its groups).")
    @click.argument("words", nargs=-1)
    def parse_number_cmd(lang: str, account: bool, words: tuple[str, ...]) -> None:
        """Print the best reading of WORDS, then the other candidates, one per line."""
        result = (parse_account if account else parse_number)(" ".join(words), lang)
        if result.best is None:
            heard = ", ".join(result.unknown) or "nothing"
            click.echo(f"no number recognised (not understood: {heard})", err=True)
            raise SystemExit(1)
        for candidate in result.candidates:
            click.echo(candidate)
