"""Region prompts exist in every language, with the same placeholders."""
from __future__ import annotations

import string

import pytest

from ivr.prompts import Prompts

KEYS = ("ask_region", "region_option", "region_option_two_digits", "region_two_digits", "region_assumed",
        "service_not_ready")


@pytest.mark.parametrize("key", KEYS)
def test_region_prompts_in_all_four_languages(key):
    prompts = Prompts()
    fields = {lang: {f for _, f, _, _ in string.Formatter().parse(prompts.text(lang, key)) if f}
              for lang in ("ro", "ru", "uk", "en")}
    assert len({frozenset(v) for v in fields.values()}) == 1, fields
