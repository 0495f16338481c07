"""CSV downloads neutralise formulas typed with fullwidth signs (＝ ＋ － ＠), which some spreadsheets
read as = + - @."""
from __future__ import annotations

import csv
import io

import pytest

from readings_store.export import csv_safe

from .helpers import seed_pending


@pytest.mark.parametrize("cell", ["＝HYPERLINK(\"http://x\")", "＋1", "－2", "＠SUM(A1)"])
def test_fullwidth_formula_signs_are_quoted(cell):
    assert csv_safe(cell) == "'" + cell


def test_other_fullwidth_text_is_left_alone():
    assert csv_safe("Ｏｒｈｅｉ") == "Ｏｒｈｅｉ" and csv_safe("１２３") == "１２３"


def test_lookup_csv_quotes_a_fullwidth_formula(oc, db, config):
    seed_pending(db, config, holder="＝HYPERLINK(\"http://x\")")
    response = oc.get("/console/lookup?q=100001&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[1][2] == "'＝HYPERLINK(\"http://x\")"
