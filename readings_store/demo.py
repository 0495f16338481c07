"""Demo records for trying the line: a few regions, a few thousand accounts, their meters and history."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Account, AccountPhone, Meter, Reading, Region, SubmissionWindow, utcnow
from .service import history_time, keypad_key

REGIONS = (
    ("CHI", "Chișinău", "Europe/Chisinau", 1),
    ("BAL", "Bălți", "Europe/Chisinau", 2),
    ("KYI", "Київ", "Europe/Kyiv", 3),
    ("NSK", "Новосибирск", "Asia/Novosibirsk", 4),
)
# Each region's name in every language of the line, as a caller of that language says it.
NAMES = {
    "CHI": {"ro": "Chișinău", "ru": "Кишинёв", "uk": "Кишинів", "en": "Chisinau"},
    "BAL": {"ro": "Bălți", "ru": "Бельцы", "uk": "Бельці", "en": "Balti"},
    "KYI": {"ro": "Kiev", "ru": "Киев", "uk": "Київ", "en": "Kyiv"},
    "NSK": {"ro": "Novosibirsk", "ru": "Новосибирск", "uk": "Новосибірськ", "en": "Novosibirsk"},
}
FIRST = ("Ion", "Maria", "Олег", "Ирина", "Тарас", "Оксана", "John", "Ana", "Vasile", "Наталья")
LAST = ("Popescu", "Rusu", "Иванов", "Шевченко", "Smith", "Ceban", "Петрова", "Коваленко", "Lungu", "Morari")


def load_demo(session: Session, accounts_per_region: int = 750, seed: int = 7) -> list[tuple[str, str, str]]:
    """Create demo records (idempotent: does nothing if regions exist). Returns (region, account, what) to try."""
    if session.scalar(select(func.count()).select_from(Region)):
        return sample_accounts(session)
    rnd = random.Random(seed)
    now = utcnow()
    for code, name, tz, key in REGIONS:
        region = Region(code=code, name=name, names=dict(NAMES[code]), timezone=tz, menu_key=key,
                        work_start=dt.time(8), work_end=dt.time(17), work_days="12345")
        session.add(region)
        session.flush()
        window = (20, 5)
        session.add(SubmissionWindow(region_id=region.id, utility=None, start_day=window[0], end_day=window[1]))
        # The history is the last closed period's reading, so that a reading given today is a new one.
        taken, period = history_time(region, window, now)
        for i in range(accounts_per_region):
            number = f"{key}{i + 1:06d}" if i % 10 else f"{key}{i + 1:04d}-{rnd.randint(10, 99)}"
            account = Account(region_id=region.id, number=number, keypad_key=keypad_key(number),
                              holder_name=f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                              kind="company" if i % 25 == 0 else "person")
            if i % 3 == 0:
                account.phones.append(AccountPhone(phone=f"+3736{key}{i:06d}"))
            session.add(account)
            session.flush()
            kinds = [("electricity", 2 if i % 2 else 1, 6, 1)]
            if i % 3 != 2:
                kinds += [("cold_water", 1, 5, 3), ("hot_water", 1, 5, 3)]
            if i % 4 == 0:
                kinds.append(("gas", 1, 5, 3))
            if i % 7 == 0:
                kinds.append(("heat", 1, 6, 3))
            for n, (utility, registers, digits, decimals) in enumerate(kinds):
                meter = Meter(account_id=account.id, serial=f"{utility[:2].upper()}{key}{i:05d}{n}",
                              utility=utility, registers=registers, digits=digits, decimals=decimals)
                session.add(meter)
                session.flush()
                for register in meter.register_names:
                    # The accounts printed to try start from 1000, so "1500" is a plausible reading.
                    value = Decimal(1000) if i < 3 else Decimal(rnd.randint(100, 9000))
                    session.add(Reading(meter_id=meter.id, register=register, value=value,
                                        period=period, taken_at=taken, received_at=taken,
                                        channel="import", status="accepted"))
    session.flush()
    return sample_accounts(session)


def sample_accounts(session: Session, per_region: int = 3) -> list[tuple[str, str, str]]:
    out = []
    for region in session.scalars(select(Region).order_by(Region.menu_key)):
        accounts = session.scalars(
            select(Account).where(Account.region_id == region.id).order_by(Account.id).limit(per_region)
        ).all()
        for account in accounts:
            meters = ", ".join(
                f"{m.utility}{' day/night' if m.registers == 2 else ''}" for m in account.meters
            )
            out.append((f"{region.code} (key {region.menu_key})", account.keypad_key, meters))
    return out
