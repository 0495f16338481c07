"""How much a step grows this process's peak resident memory (Linux; None elsewhere)."""
from __future__ import annotations


def _kb(field: str) -> int | None:
    """A ``/proc/self/status`` figure in kB (None off Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM (the peak RSS) to the current RSS
        return True
    except OSError:
        return False


class PeakGrowth:
    """``with PeakGrowth() as grown: ...`` then ``grown.mb``: the peak RSS during the block less
    the RSS before it, in MB (None where Linux's counters are missing)."""

    mb: float | None = None

    def __enter__(self) -> PeakGrowth:
        self._known = _reset_peak()
        self._before = _kb("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        after = _kb("VmHWM")
        if self._known and self._before is not None and after is not None:
            self.mb = (after - self._before) / 1024


def largest(grown: list[PeakGrowth]) -> str:
    """The largest growth of some runs, for a table column."""
    known = [g.mb for g in grown if g.mb is not None]
    return f"{max(known):8.1f}" if known else "       ?"
