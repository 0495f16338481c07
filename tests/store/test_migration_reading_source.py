"""Migration 0010: who gave each reading (``given_from``) and whether a trusted source did
(``trusted``), filled in for the readings stored before, as the models describe them, and back."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import Base

pytestmark = pytest.mark.db

AT = "2026-01-01 00:00:00+00"
CUSTOMER, STRANGER = "+37369555111", "+37369555222"
SMS_SID = "SM" + "a" * 32


def _rows(conn) -> None:
    def insert(sql: str, **params) -> None:
        conn.execute(text(sql), {"at": AT, "yes": True, **params})

    insert("INSERT INTO regions (id, code, name, timezone, work_start, work_end, work_days, created_at) "
           "VALUES (1, 'CHI', 'Chișinău', 'Europe/Chisinau', '08:00:00', '17:00:00', '12345', :at)")
    insert("INSERT INTO accounts (id, region_id, number, keypad_key, holder_name, kind, active, created_at, "
           "updated_at) VALUES (1, 1, '1000003', '1000003', 'Ion Popescu', 'person', :yes, :at, :at)")
    insert("INSERT INTO account_phones (id, account_id, phone) VALUES (1, 1, :p)", p=CUSTOMER)
    insert("INSERT INTO meters (id, account_id, serial, utility, registers, digits, decimals, active, created_at) "
           "VALUES (1, 1, 'EL0001', 'electricity', 1, 6, 1, :yes, :at)")
    for n, number in ((1, CUSTOMER), (2, STRANGER), (3, None)):
        insert("INSERT INTO calls (id, call_sid, from_number, state, steps, seq, started_at) "
               "VALUES (:n, :sid, :number, '{}', '[]', 1, :at)", n=n, sid=f"CA{n:032d}", number=number)
    insert("INSERT INTO sms_messages (id, message_sid, from_number, body, outcome, received_at) "
           "VALUES (1, :sid, :p, '1000003 1200', 'readings', :at)", sid=SMS_SID, p=CUSTOMER)
    readings = [  # id, channel, call, operator, idempotency key
        (1, "import", None, None, None), (2, "phone_keypad", 1, None, "CA1:5"), (3, "phone_speech", 2, None, "CA2:5"),
        (4, "phone_keypad", 3, None, "CA3:5"), (5, "sms", None, None, f"sms:{SMS_SID}:1:total"),
        (6, "operator", 2, None, None), (7, "api", None, None, None)]
    for rid, channel, call, operator, key in readings:
        insert("INSERT INTO readings (id, meter_id, register, value, period, out_of_window, taken_at, received_at, "
               "channel, status, call_id, operator_id, idempotency_key) VALUES (:id, 1, 'total', '1200', '2026-01', "
               ":no, :at, :at, :channel, 'accepted', :call, :operator, :key)",
               id=rid, channel=channel, call=call, operator=operator, key=key, no=False)


def test_migration_0010_fills_in_who_gave_each_reading_and_goes_back(empty_database_url):
    url = empty_database_url
    upgrade(url, "0009")
    engine = make_engine(url)
    with engine.begin() as conn:
        _rows(conn)
    upgrade(url, "0010")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, given_from, trusted FROM readings ORDER BY id")).all()
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [(r[0], r[1], bool(r[2])) for r in rows] == [
        (1, None, True),  # an import
        (2, CUSTOMER, True),  # the number on file, by phone
        (3, STRANGER, False),
        (4, None, False),  # withheld
        (5, CUSTOMER, True),  # the number on file, by text
        (6, None, True),  # an operator
        (7, None, True),  # the API
    ]
    # What this revision adds is as the models have it (later revisions add more to readings).
    assert [d for d in diffs if "readings" in repr(d) and ("given_from" in repr(d) or "trusted" in repr(d))] == []
    command.downgrade(alembic_config(url), "0009")
    engine.dispose()
    engine = make_engine(url)
    columns = {c["name"] for c in inspect(engine).get_columns("readings")}
    assert "given_from" not in columns and "trusted" not in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM readings")).scalar_one() == 7
    engine.dispose()
