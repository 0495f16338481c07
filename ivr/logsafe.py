"""Log lines that outside input cannot forge.

Values from requests (paths, form fields, user names, URLs, exception texts quoting them) may hold
line breaks or other control characters; written as they are, ``/voice/step/x%0aFORGED`` would
start a line of its own in the log. ``safe_logger`` escapes every argument of every log call
(``\\n`` becomes ``\\x0a``), so one call is always one line; the format string is ours and stays.
"""
from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(value) -> str:
    """``str(value)`` with control characters (and Unicode line separators) as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                        str(value))


class SafeLogger(logging.LoggerAdapter):
    """A logger whose arguments are escaped; numbers are left as they are (``%d`` keeps working)."""

    def log(self, level, msg, *args, **kwargs):
        if self.isEnabledFor(level):
            args = tuple(a if isinstance(a, (int, float)) else escape(a) for a in args)
            self.logger.log(level, msg, *args, **kwargs)


def safe_logger(name: str) -> SafeLogger:
    return SafeLogger(logging.getLogger(name), {})


class RateLimitedLog:
    """Log lines about outside noise (junk messages, refused handshakes) at most ``burst`` per
    ``period`` seconds per kind: whoever can send junk must not be able to fill the disk with our
    log. Lines beyond the budget are counted, and the next line logged says how many were left
    out."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter, *, burst: int = 10, period: float = 60.0,
                 clock=None):
        import threading
        import time

        self.logger = logger
        self.burst, self.period = burst, period
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._windows: dict[str, list] = {}  # kind -> [window start, lines logged in it, lines left out]

    def log(self, level: int, kind: str, msg: str, *args) -> bool:
        """Log ``msg % args`` under ``kind`` if the budget allows; True when it was logged."""
        with self._lock:
            now = self._clock()
            window = self._windows.get(kind)
            if window is None or now - window[0] >= self.period:
                window = self._windows[kind] = [now, 0, window[2] if window else 0]
            if window[1] >= self.burst:
                window[2] += 1
                return False
            window[1] += 1
            left_out, window[2] = window[2], 0
        if left_out:
            msg, args = msg + " (%d similar lines left out before this one)", (*args, left_out)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, kind: str, msg: str, *args) -> bool:
        return self.log(logging.WARNING, kind, msg, *args)
