"""What a billing API token sees: its *view*, a set of regions and a set of utilities.

A billing centre serving many suppliers from one line gives each supplier's billing system a token
limited to its regions and utilities (``ivr api-tokens create NAME --regions … --utilities …``).
Every list, read, export and acknowledgement of the API is filtered by the token's view:

* a reading, or a meter of the missing-readings report, is in a view when its account's region
  and its meter's utility are both in it (a view without regions, or without utilities, has every
  region, or every utility);
* an export batch belongs to the view it was created in (``ExportBatch.view``, the view's ``key``):
  only tokens with that same view list, read and acknowledge it, so a token can be replaced by a
  new one with the same limits and carry on where the old one stopped.

A reading is exported once, to one view. So that exactly-once holds per view, the views of
exporting (write) tokens do not overlap unless they are the same (``overlapping_exporter`` refuses
such a token), and an export in the unlimited view leaves out the readings of every limited
exporting view (``for_export``): the billing centre's own pull gets what no supplier pulls itself.

Flask-free: the API and the CLI share it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import and_, not_, select, true
from sqlalchemy.orm import Session

from .models import UTILITIES, Account, ApiClient, ExportBatch, Meter, Region


@dataclass(frozen=True)
class View:
    regions: frozenset[int] | None = None  # region ids; None: every region
    utilities: frozenset[str] | None = None  # None: every utility
    # Only when exporting in the unlimited view: the limited exporting views it leaves alone.
    others: tuple[View, ...] = ()

    @property
    def limited(self) -> bool:
        return self.regions is not None or self.utilities is not None

    @property
    def narrows(self) -> bool:
        """Whether an export in this view leaves any reading out."""
        return self.limited or bool(self.others)

    @property
    def key(self) -> str | None:
        """What identifies the view on an export batch (None: the unlimited view). Region ids,
        not codes, so that renaming a region's code keeps its batches in the view."""
        if not self.limited:
            return None
        regions = ",".join(str(i) for i in sorted(self.regions)) if self.regions is not None else "*"
        utilities = ",".join(sorted(self.utilities)) if self.utilities is not None else "*"
        return f"regions={regions};utilities={utilities}"

    def has(self, region_id: int | None = None, utility: str | None = None) -> bool:
        """Whether the region and the utility (either may be left out) are in the view."""
        return ((region_id is None or self.regions is None or region_id in self.regions)
                and (utility is None or self.utilities is None or utility in self.utilities))

    def overlaps(self, other: View) -> bool:
        return bool((self.regions is None or other.regions is None or self.regions & other.regions)
                    and (self.utilities is None or other.utilities is None or self.utilities & other.utilities))

    def clause(self):
        """SQL condition on ``Account.region_id`` and ``Meter.utility``: in the view."""
        parts = []
        if self.regions is not None:
            parts.append(Account.region_id.in_(sorted(self.regions)))
        if self.utilities is not None:
            parts.append(Meter.utility.in_(sorted(self.utilities)))
        return and_(true(), *parts)

    def export_clause(self):
        """The readings an export in this view may take: its own, less the other exporting views'."""
        return and_(self.clause(), *(not_(other.clause()) for other in self.others))

    def owns(self, batch: ExportBatch) -> bool:
        return batch.view == self.key

    def batch_clause(self):
        return ExportBatch.view.is_(None) if self.key is None else ExportBatch.view == self.key


EVERYTHING = View()


def of_client(client: ApiClient) -> View:
    regions = frozenset(r.region_id for r in client.regions) or None
    utilities = frozenset(client.utilities) if client.utilities is not None else None
    return View(regions, utilities)


def _split(values: Iterable[str] | None) -> list[str] | None:
    """``["CHI,BAL", "ORH"]`` (repeated options, comma-separated lists) -> ``["CHI", "BAL", "ORH"]``."""
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse(session: Session, regions: Iterable[str] | None, utilities: Iterable[str] | None) -> View:
    """A view from region codes and utility names as an administrator types them (None: no limit
    of that kind). Raises ValueError, in one line, for an unknown region or utility or an empty list."""
    region_codes, utility_names = _split(regions), _split(utilities)
    region_ids = None
    if region_codes is not None:
        if not region_codes:
            raise ValueError("--regions names no region (leave it out for every region)")
        known = dict(session.execute(select(Region.code, Region.id)).all())
        unknown = [code for code in region_codes if code not in known]
        if unknown:
            raise ValueError(f"unknown region {unknown[0]!r}; regions are {', '.join(sorted(known)) or 'none yet'}")
        region_ids = frozenset(known[code] for code in region_codes)
    if utility_names is not None:
        if not utility_names:
            raise ValueError("--utilities names no utility (leave it out for every utility)")
        unknown = [name for name in utility_names if name not in UTILITIES]
        if unknown:
            raise ValueError(f"unknown utility {unknown[0]!r}; utilities are {', '.join(UTILITIES)}")
    return View(region_ids, frozenset(utility_names) if utility_names is not None else None)


def describe(session: Session, view: View) -> str:
    """``regions BAL, CHI; utilities gas`` / ``every region; utilities gas`` / ``everything``."""
    if not view.limited:
        return "everything"
    if view.regions is None:
        regions = "every region"
    else:
        codes = session.scalars(select(Region.code).where(Region.id.in_(sorted(view.regions)))).all()
        regions = "regions " + ", ".join(sorted(codes))
    utilities = "every utility" if view.utilities is None else "utilities " + ", ".join(sorted(view.utilities))
    return f"{regions}; {utilities}"


def describe_key(session: Session, key: str | None) -> str:
    """``describe`` for the ``view`` stored on an export batch."""
    if key is None:
        return "everything"
    parts = dict(part.split("=", 1) for part in key.split(";"))
    regions = None if parts["regions"] == "*" else frozenset(int(i) for i in parts["regions"].split(","))
    utilities = None if parts["utilities"] == "*" else frozenset(parts["utilities"].split(","))
    return describe(session, View(regions, utilities))


def _exporters(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).where(ApiClient.scope == "write", ApiClient.revoked_at.is_(None))
                                .order_by(ApiClient.id)))


def overlapping_exporter(session: Session, view: View) -> ApiClient | None:
    """An active exporting token whose limited view shares readings with ``view`` without being
    the same view: a reading would go to whichever exported first, and the other would miss it."""
    if not view.limited:
        return None  # the unlimited view takes only what no limited view exports (for_export)
    for client in _exporters(session):
        other = of_client(client)
        if other.limited and other.key != view.key and other.overlaps(view):
            return client
    return None


def for_export(session: Session, view: View) -> View:
    """The view to export in: the unlimited view leaves out every limited exporting view."""
    if view.limited:
        return view
    others = {v.key: v for v in map(of_client, _exporters(session)) if v.limited}
    return View(others=tuple(others[k] for k in sorted(others)))
