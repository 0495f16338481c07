"""``parse-number`` CLI command, on a local group (ivr/cli.py wiring is done separately)."""
import click
import pytest
from click.testing import CliRunner

from ivr.commands.parse_number_cmd import register


@pytest.fixture
def cli():
    @click.group()
    def group():
        pass

    register(group)
    return group


def run(cli, *args):
    return CliRunner().invoke(cli, ["parse-number", *args])


def test_best_then_other_candidates(cli):
    r = run(cli, "--lang", "en", "twenty", "three")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == ["23", "203"]


def test_words_may_come_as_one_argument(cli):
    r = run(cli, "--lang", "ru", "сто двадцать три тысячи четыреста")
    assert r.exit_code == 0
    assert r.output == "123400\n"


def test_decimal(cli):
    assert run(cli, "--lang", "uk", "дванадцять", "кома", "п'ять").output == "12.5\n"


def test_nothing_parsed_exits_1_with_message(cli):
    r = run(cli, "--lang", "ro", "bună", "ziua")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert "no number recognised" in r.stderr and "buna" not in r.stderr


def test_no_words(cli):
    r = run(cli, "--lang", "en")
    assert r.exit_code == 1
    assert "no number recognised" in r.stderr


def test_lang_is_required_and_checked(cli):
    assert run(cli, "five").exit_code == 2
    r = run(cli, "--lang", "de", "fünf")
    assert r.exit_code == 2
    assert "de" in r.output


def test_account_number_with_its_dash(cli):
    r = run(cli, "--lang", "ru", "--account", "двенадцать тире триста сорок пять")
    assert (r.exit_code, r.output) == (0, "12-345\n")
    assert run(cli, "--lang", "ru", "двенадцать тире триста сорок пять").output == "12345\n"
