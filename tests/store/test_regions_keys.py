import pytest

from readings_store.models import Region
from readings_store.regions import next_free_menu_key


def test_next_free_key_fills_gaps_and_respects_pending(db):
    assert next_free_menu_key(db) == 1
    db.add_all([Region(code="A", name="A", menu_key=1), Region(code="C", name="C", menu_key=3)])
    db.flush()
    assert next_free_menu_key(db) == 2
    assert next_free_menu_key(db, taken={2}) == 4


def test_no_key_left_is_a_clear_error(db):
    db.add_all([Region(code=f"R{k}", name=f"R{k}", menu_key=k) for k in range(1, 100)])
    db.flush()
    with pytest.raises(ValueError, match="every region menu key"):
        next_free_menu_key(db)
