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
