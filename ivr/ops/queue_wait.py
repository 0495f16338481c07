"""How long the request being served waited for a worker thread (gunicorn's ``gthread`` worker
queues accepted connections until one of its threads is free; ``timeout`` does not cover that).

``ivr.ops.gthread_worker.QueueTimedWorker`` stamps each connection as it is queued and hands the stamp
to the thread that serves it; ``waited()`` reads it there. Served otherwise (``ivr serve``, tests),
no request has a stamp and ``waited()`` is None.
"""
from __future__ import annotations

import threading
import time

_local = threading.local()


def serving(queued_at: float | None) -> None:
    """Called by the worker thread before it serves a connection queued at ``queued_at``
    (``time.monotonic()``); None: not known."""
    _local.queued_at = queued_at


def waited() -> float | None:
    """Seconds the request in this thread waited before a thread took it, or None if unknown."""
    queued_at = getattr(_local, "queued_at", None)
    return None if queued_at is None else time.monotonic() - queued_at
