"""gunicorn's threaded worker, noting when each connection is queued for a thread, so that the app
can tell a request that waited too long (``ivr.ops.queue_wait``; the app answers it at once, see
``IVR_QUEUE_WAIT``). gunicorn.conf.py sets ``worker_class`` to it."""
from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker

from . import queue_wait


class QueueTimedWorker(ThreadWorker):
    def enqueue_req(self, conn):
        # Both a new connection and a kept-alive one with a new request come through here.
        conn.ivr_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        queue_wait.serving(getattr(conn, "ivr_queued_at", None))
        try:
            return super().handle(conn)
        finally:
            queue_wait.serving(None)
