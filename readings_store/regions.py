"""Region menu keys: every region a caller can choose has its own key (1-9, then 10-99)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Region

MAX_MENU_KEY = 99


def next_free_menu_key(session: Session, taken: set[int] | None = None) -> int:
    """The smallest key no region uses (``taken`` adds keys handed out but not yet flushed)."""
    used = set(session.scalars(select(Region.menu_key).where(Region.menu_key.is_not(None))))
    used |= taken or set()
    for key in range(1, MAX_MENU_KEY + 1):
        if key not in used:
            return key
    raise ValueError(f"every region menu key 1-{MAX_MENU_KEY} is taken")
