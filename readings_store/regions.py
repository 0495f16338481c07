"""Regions and their settings: the one place that checks and applies them (CLI and console alike).

A setting is given as text (as typed on a command line or in a form) or as a ready value; every
setting of a change is checked before anything is applied, so a bad one changes nothing and
raises ``RegionError`` with a sentence an administrator can act on.

Also here: which region a caller is most likely calling about, from the caller ID (the longest
configured prefix wins, then the phonenumbers geocoder's place name matched against region names),
and the menu keys (every region a caller can choose has its own key: 1-9, then 10-99).
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import phones
from .models import UTILITIES, Account, ApiClient, ApiClientRegion, Call, Region, ReviewTask, SubmissionWindow
from .service import audit

MAX_MENU_KEY = 99
LANGUAGES = ("ro", "ru", "uk", "en")
# A window's last day: the rules clamp a day to the month's length (rules.billing_period), so 31
# is the last day of every month. "end" is accepted for it and shown as such.
END_OF_MONTH = 31
ALL_UTILITIES = "all"  # a window for every utility without its own (stored as utility NULL)
UTILITY_ALIASES = {"water": ("cold_water", "hot_water")}
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PREFIX = re.compile(r"^\+[1-9][0-9]{0,14}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_NONE = ("", "none", "-")
SETTINGS = ("code", "name", "names", "menu_key", "timezone", "work_days", "work_start", "work_end", "hours",
            "operator_number", "phone_prefixes", "windows", "ask_org_name")
_YES = ("yes", "on", "true", "1")
_NO = ("no", "off", "false", "0", "")


class RegionError(ValueError):
    """A region setting that cannot be applied; the message says why."""


def next_free_menu_key(session: Session, taken: set[int] | None = None) -> int:
    """The smallest key no region uses (``taken`` adds keys handed out but not yet flushed)."""
    used = set(session.scalars(select(Region.menu_key).where(Region.menu_key.is_not(None))))
    used |= taken or set()
    for key in range(1, MAX_MENU_KEY + 1):
        if key not in used:
            return key
    raise ValueError(f"every region menu key 1-{MAX_MENU_KEY} is taken")


# --- reading settings --------------------------------------------------------------------------

def get_region(session: Session, code: str) -> Region:
    region = session.scalars(select(Region).where(Region.code == code)).first()
    if region is None:
        raise RegionError(f"no region with code {code!r}")
    return region


def all_regions(session: Session) -> list[Region]:
    """Regions in menu order (those without a key last, by code)."""
    return list(session.scalars(select(Region).order_by(Region.menu_key.is_(None), Region.menu_key, Region.code)))


def format_time(value: dt.time) -> str:
    return f"{value:%H:%M}"


def format_window(start: int, end: int) -> str:
    return f"{start}-{'end' if end >= END_OF_MONTH else end}"


def window_map(region: Region) -> dict[str, str]:
    """{utility or "all": "20-25"} for display."""
    return {(w.utility or ALL_UTILITIES): format_window(w.start_day, w.end_day)
            for w in sorted(region.windows, key=lambda w: (w.utility is not None, w.utility or ""))}


def describe(region: Region) -> dict:
    """Every setting of a region as plain values (listing, audit trail)."""
    return {
        "code": region.code,
        "name": region.name,
        "names": {lang: region.names[lang] for lang in LANGUAGES if (region.names or {}).get(lang)},
        "menu_key": region.menu_key,
        "timezone": region.timezone,
        "work_days": region.work_days,
        "work_start": format_time(region.work_start),
        "work_end": format_time(region.work_end),
        "operator_number": region.operator_number,
        "phone_prefixes": list(region.phone_prefixes or []),
        "windows": window_map(region),
        "ask_org_name": bool(region.ask_org_name),
    }


# --- checking one setting ----------------------------------------------------------------------

def _text(value, what: str, limit: int = 200) -> str:
    text = str(value if value is not None else "").strip()
    if not text:
        raise RegionError(f"{what} must not be empty")
    if len(text) > limit or _CONTROL.search(text):
        raise RegionError(f"{what} must be at most {limit} characters without control characters")
    return text


def parse_code(value) -> str:
    code = str(value or "").strip()
    if not _CODE.match(code):
        raise RegionError(f"region code {code!r} may hold only letters, digits, - and _ (1-32 characters)")
    return code


def parse_menu_key(value) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    try:
        key = int(str(value).strip())
    except ValueError:
        raise RegionError(f"menu key must be a whole number from 1 to {MAX_MENU_KEY} (or none), got {value!r}") from None
    if not 1 <= key <= MAX_MENU_KEY:
        raise RegionError(f"menu key must be from 1 to {MAX_MENU_KEY} (or none), got {key}")
    return key


def parse_timezone(value) -> str:
    name = str(value or "").strip()
    try:
        if not name or len(name) > 64:
            raise ValueError
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RegionError(f"timezone {name!r} is not a known time zone (like Europe/Chisinau)") from None
    return name


def parse_work_days(value) -> str:
    days = re.sub(r"[\s,]", "", str(value or ""))
    if not days or not set(days) <= set("1234567") or len(set(days)) != len(days):
        raise RegionError(f"working days must be ISO weekday digits without repeats, 1=Monday … 7=Sunday "
                          f"(like 12345), got {value!r}")
    return "".join(sorted(days))


def parse_time(value, what: str) -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    match = _TIME.match(str(value or "").strip())
    if not match:
        raise RegionError(f"{what} must be a time of day like 08:00, got {value!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def parse_hours(value) -> tuple[dt.time, dt.time]:
    """Working hours written "08:00-17:00"."""
    start, sep, end = str(value or "").strip().partition("-")
    if not sep:
        raise RegionError(f"working hours are written start-end, like 08:00-17:00, got {value!r}")
    return parse_time(start, "the start of working hours"), parse_time(end, "the end of working hours")


def parse_operator_number(value) -> str | None:
    if value is None or str(value).strip().lower() in _NONE:
        return None
    text = str(value).strip()
    number = phones.e164(text, valid=True) if text.startswith("+") else None
    if number is None:
        raise RegionError(f"operator number {text!r} is not a valid phone number in E.164 form (like +37322123456)")
    return number


def parse_flag(value, what: str) -> bool:
    """A yes/no setting: a bool, or text "yes"/"no" (also on/off, true/false, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise RegionError(f"{what} is yes or no, got {value!r}")


def parse_prefix(value) -> str:
    prefix = re.sub(r"[\s().-]", "", str(value or ""))
    if not _PREFIX.match(prefix):
        raise RegionError(f"phone prefix {str(value).strip()!r} must be + and 1-15 digits, like +37322")
    digits = prefix[1:]
    if not any(int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE for n in (1, 2, 3) if len(digits) >= n):
        raise RegionError(f"phone prefix {prefix} does not begin with a country calling code (like +373)")
    return prefix


def parse_prefixes(value) -> list[str]:
    """A list, or text with prefixes separated by commas ("none" for no prefix)."""
    if isinstance(value, str) and value.strip().lower() in _NONE:
        return []
    items = re.split(r"[,;\n]+", value) if isinstance(value, str) else list(value or [])
    prefixes = [parse_prefix(p) for p in items if str(p).strip()]
    return sorted(set(prefixes), key=prefixes.index)


def parse_names(value) -> dict[str, str | None]:
    """{lang: name, or None to remove it}; a text form is "ru=Кишинёв" items, one per line or ";"."""
    if isinstance(value, str):
        pairs = {}
        for item in re.split(r"[;\n]", value):
            if not item.strip():
                continue
            lang, sep, name = item.partition("=")
            if not sep:
                raise RegionError(f"a name per language is written lang=name (like ru=Кишинёв), got {item.strip()!r}")
            pairs[lang.strip()] = name
        value = pairs
    names: dict[str, str | None] = {}
    for lang, name in dict(value or {}).items():
        lang = str(lang).strip().lower()
        if lang not in LANGUAGES:
            raise RegionError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
        names[lang] = None if name is None or not str(name).strip() else _text(name, f"the {lang} name")
    return names


def parse_window(value) -> tuple[int, int] | None:
    """"20-25", "15-end" (end of the month), "25-5" (wraps into the next month) or "none"."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        start, end = value
    else:
        start, sep, end = str(value).strip().partition("-")
        if not sep:
            raise RegionError(f"a submission window is written start-end, like 20-25 or 15-end, got {value!r}")
    days = []
    for part in (start, end):
        text = str(part).strip().lower()
        if text in ("end", "last"):
            days.append(END_OF_MONTH)
            continue
        if not text.isdigit() or not 1 <= int(text) <= 31:
            raise RegionError(f"a window day must be from 1 to 31 (or end for the end of the month), got {part!r}")
        days.append(int(text))
    return days[0], days[1]


def parse_windows(value) -> dict[str | None, tuple[int, int] | None]:
    """{utility (None: every utility) -> (start, end), or None to remove}; text is "water=20-25" items."""
    if isinstance(value, str):
        items = [i for i in re.split(r"[;,\n]", value) if i.strip()]
        pairs = {}
        for item in items:
            utility, sep, window = item.partition("=")
            if not sep:
                raise RegionError(f"a window is written utility=start-end (like electricity=15-end), got {item.strip()!r}")
            pairs[utility.strip()] = window
        value = pairs
    windows: dict[str | None, tuple[int, int] | None] = {}
    for utility, window in dict(value or {}).items():
        name = (utility or ALL_UTILITIES).strip().lower()
        targets = UTILITY_ALIASES.get(name, (name,))
        for target in targets:
            if target != ALL_UTILITIES and target not in UTILITIES:
                raise RegionError(f"utility {utility!r} is not one of {', '.join((ALL_UTILITIES, *UTILITIES, 'water'))}")
            windows[None if target == ALL_UTILITIES else target] = parse_window(window)
    return windows


# --- applying a change -------------------------------------------------------------------------

@dataclass
class _Checked:
    values: dict
    names: dict | None
    windows: dict | None


def _label(region: Region) -> str:
    return f"{region.code} ({region.name})"


def _check(session: Session, region: Region | None, settings: dict) -> _Checked:
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise RegionError(f"unknown region setting(s): {', '.join(sorted(unknown))}")
    values: dict = {}
    others = [r for r in session.scalars(select(Region)) if region is None or r.id != region.id]
    if "code" in settings:
        values["code"] = parse_code(settings["code"])
        holder = next((r for r in others if r.code == values["code"]), None)
        if holder:
            raise RegionError(f"region code {values['code']} is already used by region {_label(holder)}")
    if "name" in settings:
        values["name"] = _text(settings["name"], "the region name")
    if "menu_key" in settings:
        values["menu_key"] = parse_menu_key(settings["menu_key"])
        holder = next((r for r in others if values["menu_key"] is not None and r.menu_key == values["menu_key"]), None)
        if holder:
            raise RegionError(f"menu key {values['menu_key']} is already used by region {_label(holder)}")
    if "timezone" in settings:
        values["timezone"] = parse_timezone(settings["timezone"])
    if "work_days" in settings:
        values["work_days"] = parse_work_days(settings["work_days"])
    if "hours" in settings:
        values["work_start"], values["work_end"] = parse_hours(settings["hours"])
    for field in ("work_start", "work_end"):
        if field in settings:
            values[field] = parse_time(settings[field], "the start of working hours" if field == "work_start"
                                       else "the end of working hours")
    start = values.get("work_start", region.work_start if region else None) or dt.time(8)
    end = values.get("work_end", region.work_end if region else None) or dt.time(17)
    if start >= end:
        raise RegionError(f"working hours must start before they end, got {format_time(start)}-{format_time(end)}")
    if "operator_number" in settings:
        values["operator_number"] = parse_operator_number(settings["operator_number"])
    if "phone_prefixes" in settings:
        values["phone_prefixes"] = parse_prefixes(settings["phone_prefixes"])
        for prefix in values["phone_prefixes"]:
            holder = next((r for r in others if prefix in (r.phone_prefixes or [])), None)
            if holder:
                raise RegionError(f"phone prefix {prefix} is already used by region {_label(holder)}")
    if "ask_org_name" in settings:
        values["ask_org_name"] = parse_flag(settings["ask_org_name"], "asking a company's caller for the organisation's name")
    names = parse_names(settings["names"]) if "names" in settings else None
    windows = parse_windows(settings["windows"]) if "windows" in settings else None
    return _Checked(values, names, windows)


def _apply(session: Session, region: Region, checked: _Checked) -> None:
    for field, value in checked.values.items():
        setattr(region, field, value)
    if checked.names is not None:
        names = dict(region.names or {})
        for lang, name in checked.names.items():
            if name is None:
                names.pop(lang, None)
            else:
                names[lang] = name
        region.names = {lang: names[lang] for lang in LANGUAGES if lang in names}  # a new dict: JSON change seen
    if checked.windows is not None:
        current = {w.utility: w for w in region.windows}
        for utility, window in checked.windows.items():
            existing = current.get(utility)
            if window is None:
                if existing is not None:
                    region.windows.remove(existing)
            elif existing is None:
                region.windows.append(SubmissionWindow(utility=utility, start_day=window[0], end_day=window[1]))
            else:
                existing.start_day, existing.end_day = window
    try:
        session.flush()
    except IntegrityError:
        # Checked above; only a change saved at the same moment by someone else gets here.
        raise RegionError("another change to the regions was saved at the same time (the code or menu key "
                          "is now taken); look again and retry") from None


def _audit(session: Session, action: str, region: Region, actor: dict | None, before=None, after=None) -> None:
    actor = actor or {"actor_kind": "system", "actor_name": "cli"}
    audit(session, action=action, entity="region", entity_id=region.id, before=before, after=after, **actor)


def create_region(session: Session, code: str, name: str, *, actor: dict | None = None, **settings) -> Region:
    """A new region; settings not given take the defaults (no menu key unless one is given)."""
    checked = _check(session, None, {"code": code, "name": name, **settings})
    region = Region(code=checked.values["code"], name=checked.values["name"], names={}, phone_prefixes=[])
    session.add(region)
    _apply(session, region, checked)
    _audit(session, "region.add", region, actor, after=describe(region))
    return region


def update_region(session: Session, region: Region, *, actor: dict | None = None, **settings) -> Region:
    """Change the given settings; every one is checked first, so a bad one changes nothing."""
    before = describe(region)
    checked = _check(session, region, settings)
    _apply(session, region, checked)
    after = describe(region)
    if after != before:
        _audit(session, "region.update", region, actor, before=before, after=after)
    return region


def remove_region(session: Session, region: Region, *, actor: dict | None = None) -> None:
    """Delete a region that nothing refers to. A region with accounts, or one that calls or review
    items refer to, is refused: take it off the phone menu instead (menu key none)."""
    accounts = session.scalar(select(func.count()).select_from(Account).where(Account.region_id == region.id))
    if accounts:
        raise RegionError(f"region {_label(region)} still has {accounts} account(s); it was not removed "
                          "(to stop offering it on the phone, set its menu key to none)")
    history = (session.scalar(select(func.count()).select_from(Call).where(Call.region_id == region.id))
               + session.scalar(select(func.count()).select_from(ReviewTask).where(ReviewTask.region_id == region.id)))
    if history:
        raise RegionError(f"region {_label(region)} appears in {history} call(s) or review item(s); it was not "
                          "removed (to stop offering it on the phone, set its menu key to none)")
    tokens = session.scalars(select(ApiClient.name).join(ApiClientRegion).where(
        ApiClientRegion.region_id == region.id, ApiClient.revoked_at.is_(None))).all()
    if tokens:
        raise RegionError(f"API token(s) {', '.join(sorted(tokens))} see region {_label(region)}; it was not removed "
                          "(revoke them first)")
    # Revoked tokens see nothing any more; their view is kept in the audit trail of their creation.
    session.execute(delete(ApiClientRegion).where(ApiClientRegion.region_id == region.id))
    _audit(session, "region.remove", region, actor, before=describe(region))
    session.delete(region)
    session.flush()


# --- the caller's region -----------------------------------------------------------------------

def _words(text: str) -> list[str]:
    """Lower-case words without diacritics: "Bălți" and "Balţi" (the geocoder's) both give ["balti"]."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.findall(r"\w+", plain.casefold())


def _contains(words: list[str], part: list[str]) -> bool:
    return bool(part) and any(words[i:i + len(part)] == part for i in range(len(words) - len(part) + 1))


def region_by_prefix(regions: list[Region], phone: str) -> Region | None:
    """The region whose configured prefix is the longest one ``phone`` starts with."""
    best, length = None, 0
    for region in regions:
        for prefix in region.phone_prefixes or []:
            if phone.startswith(prefix) and len(prefix) > length:
                best, length = region, len(prefix)
    return best


def load_geocoder() -> None:
    """Load the geocoder's place names now rather than on the first call that needs them."""
    import phonenumbers.geocoder  # noqa: F401


def region_by_geocoder(regions: list[Region], phone: str) -> Region | None:
    """The region named in the geocoder's English place description of ``phone`` (by any of its
    names or its code); None when no region, or more than one equally well, matches."""
    # Imported here: its place-name data takes a second or more to load, which every command
    # line run would pay (the web app loads it before forking: ``load_geocoder``).
    from phonenumbers import geocoder
    try:
        description = geocoder.description_for_number(phonenumbers.parse(phone, None), "en")
    except phonenumbers.NumberParseException:
        return None
    words = _words(description or "")
    if not words:
        return None
    scored = []
    for region in regions:
        labels = [region.name, region.code, *(region.names or {}).values()]
        score = max((len(_words(label)) for label in labels if _contains(words, _words(label))), default=0)
        if score:
            scored.append((score, region))
    scored.sort(key=lambda pair: -pair[0])
    if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None
    return scored[0][1]


def region_for_caller(session: Session, phone: str | None) -> tuple[Region, str] | None:
    """(region, "prefix" | "geocoder") a caller most likely calls about, among the regions offered
    in the phone menu; None when the caller ID says nothing about it."""
    if not phone:
        return None
    return region_among(list(session.scalars(select(Region).where(Region.menu_key.is_not(None)))), phone)


def region_among(regions: list[Region], phone: str | None) -> tuple[Region, str] | None:
    """``region_for_caller`` among ``regions`` (the menu's, read by the caller)."""
    if not phone:
        return None
    region = region_by_prefix(regions, phone)
    if region is not None:
        return region, "prefix"
    region = region_by_geocoder(regions, phone)
    return (region, "geocoder") if region is not None else None


# --- working hours as a caller hears them -------------------------------------------------------

def caller_timezone(phone: str | None) -> str | None:
    """The time zone of the caller's number when it has exactly one (a Moldovan or a London number;
    not a Russian mobile, which spans eleven), else None."""
    if not phone:
        return None
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None
    if len(zones) != 1:
        return None
    try:
        ZoneInfo(zones[0])
    except (ZoneInfoNotFoundError, ValueError):
        return None  # "Etc/Unknown"
    return zones[0]


def hours_in_zone(region: Region, zone: str, now: dt.datetime) -> tuple[str, dt.time, dt.time]:
    """The region's working hours (ISO weekdays, start, end) as clocks in ``zone`` show them on the
    next working day (today, until its hours end): a caller in Chișinău hears Novosibirsk's
    08:00-17:00 as 03:00-12:00, and a start that falls on the day before moves the working days back
    with it. The day matters in the weeks one zone has summer time and the other not yet."""
    days, start, end = region.work_days, region.work_start, region.work_end
    if zone == region.timezone or not days:
        return days, start, end
    home, there = ZoneInfo(region.timezone), ZoneInfo(zone)
    today = now.astimezone(home).date()
    day = next((today + dt.timedelta(days=n) for n in range(8)
                if str((today + dt.timedelta(days=n)).isoweekday()) in days
                and dt.datetime.combine(today + dt.timedelta(days=n), end, home) > now), today)
    opens = dt.datetime.combine(day, start, home).astimezone(there)
    closes = dt.datetime.combine(day, end, home).astimezone(there)
    shift = (opens.date() - day).days
    moved = "".join(sorted({str((int(d) - 1 + shift) % 7 + 1) for d in days}))
    return moved, opens.time().replace(tzinfo=None), closes.time().replace(tzinfo=None)
