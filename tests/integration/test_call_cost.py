"""What a whole keypad call costs the database: SQL statements and commits, counted with
SQLAlchemy's ``before_cursor_execute`` and ``commit`` events over a scripted call (opening,
language, account, value, confirmation, finish, Twilio's status callback). The figures must not
grow with the number of accounts, and must stay within the budget: a statement added to a turn
fails this test."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event, insert

from readings_store.models import Account, AccountPhone, Meter
from readings_store.service import keypad_key
from tests import factories as f

# The whole call below: six webhooks of the dialog and the status callback, 24 statements on SQLite
# and PostgreSQL. Each turn is claimed and loaded by one statement (UPDATE ... RETURNING) and
# written by one UPDATE of the call (its step held on the row until the call ends, when one INSERT
# writes the call's steps). The opening reads the caller's accounts (kept in the call's state) and
# the menu's regions, and inserts the call; the language turn reads the regions; the account turn
# reads the account with its meters, region, windows and whether the caller is on file, by one
# query; each value turn reads the meter the same way (on PostgreSQL taking the account's lock in
# that statement) and the verdict's readings and count by one more, and writes the read-back
# (counted, then forgotten when saved) or the reading; the status callback is one UPDATE ... RETURNING.
STATEMENT_BUDGET = 24
COMMIT_BUDGET = 7


def _load_accounts(db, region, count: int) -> None:
    """``count`` other accounts, each with a meter and a phone number, in a few bulk statements."""
    db.execute(insert(Account), [
        {"region_id": region.id, "number": f"9{n:07d}", "keypad_key": keypad_key(f"9{n:07d}"),
         "holder_name": f"Holder {n}", "kind": "person", "active": True} for n in range(count)])
    ids = [i for (i,) in db.execute(Account.__table__.select().with_only_columns(Account.id)
                                     .where(Account.number.like("9%")))]
    db.execute(insert(Meter), [{"account_id": i, "serial": f"EL{i:07d}", "utility": "electricity", "registers": 1,
                                "digits": 6, "decimals": 1, "active": True} for i in ids])
    db.execute(insert(AccountPhone), [{"account_id": i, "phone": f"+3736{i:07d}"} for i in ids])


def _scripted_call(db, phone, engine, others: int) -> tuple[list[str], int]:
    r = f.region(db)
    _load_accounts(db, r, others)
    a = f.account(db, r, number="100001")
    f.meter(db, a, previous=1000)
    db.commit()
    statements: list[str] = []
    commits: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    def committed(conn):
        commits.append(1)

    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "commit", committed)
    try:
        call = phone(caller="+447700900123")
        assert "English — press 4." in call.start().texts
        call.press("4")
        assert any("electricity" in t for t in call.press("100001#").texts)
        assert "That's 1 2 5 0 point 5." in call.press("1250*5#").texts
        assert "Reading saved." in call.press("1").texts
        assert call.press("3").ended == "hangup"
        assert call.hang_up() == 204
    finally:
        event.remove(engine, "before_cursor_execute", count)
        event.remove(engine, "commit", committed)
    return statements, len(commits)


@pytest.mark.parametrize("others", [1_000, 20_000])
def test_a_keypad_call_stays_within_its_statement_budget(db, phone, engine, others):
    statements, commits = _scripted_call(db, phone, engine, others)
    kinds = Counter(s.split()[0].upper() for s in statements)
    assert len(statements) <= STATEMENT_BUDGET, (len(statements), kinds, statements)
    assert commits <= COMMIT_BUDGET
    # No per-request pool ping (``SELECT 1``) and no statement per account.
    assert not any(s.strip().upper() == "SELECT 1" for s in statements)
