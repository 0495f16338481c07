"""Small builders for test records (plain functions; they flush, the test commits)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from readings_store.models import Account, AccountPhone, Meter, Reading, Region, SubmissionWindow, utcnow
from readings_store.service import history_time, keypad_key, window_for


# Working hours (start, end, ISO weekdays) that do not depend on when a test runs. A test about
# office hours passes OFFICE_HOURS and pins the clock (``readings_store.clock.travel_to``).
NEVER_OPEN = (dt.time(0), dt.time(0), "")
ALWAYS_OPEN = (dt.time(0), dt.time(23, 59, 59, 999999), "1234567")
OFFICE_HOURS = (dt.time(8), dt.time(17), "12345")


def region(db, code="CHI", name="Chișinău", menu_key=1, timezone="Europe/Chisinau", operator_number=None,
           work=NEVER_OPEN, window=None) -> Region:
    r = Region(code=code, name=name, menu_key=menu_key, timezone=timezone, operator_number=operator_number,
               work_start=work[0], work_end=work[1], work_days=work[2])
    db.add(r)
    db.flush()
    if window:
        db.add(SubmissionWindow(region_id=r.id, utility=None, start_day=window[0], end_day=window[1]))
        db.flush()
    return r


def account(db, region, number="100001", holder="Ion Popescu", kind="person", phones=(), active=True) -> Account:
    a = Account(region_id=region.id, number=number, keypad_key=keypad_key(number), holder_name=holder, kind=kind,
                active=active)
    for p in phones:
        a.phones.append(AccountPhone(phone=p))
    db.add(a)
    db.flush()
    return a


def meter(db, account, serial="EL0001", utility="electricity", registers=1, digits=6, decimals=1,
          previous=None, previous_days_ago=30) -> Meter:
    """A meter; with ``previous``, an accepted import reading of the last closed billing period, taken
    ``previous_days_ago`` days ago or, when that would still be in the current period, at the end of the
    previous period's window (``service.history_time``)."""
    m = Meter(account_id=account.id, serial=serial, utility=utility, registers=registers, digits=digits,
              decimals=decimals)
    db.add(m)
    db.flush()
    if previous is not None:
        region = db.get(Region, account.region_id)
        taken, period = history_time(region, window_for(db, region.id, utility), utcnow(), previous_days_ago)
        for register in m.register_names:
            db.add(Reading(meter_id=m.id, register=register, value=Decimal(str(previous)), period=period,
                           taken_at=taken, received_at=taken, channel="import", status="accepted"))
        db.flush()
    return m
