"""Prometheus metrics, served at ``GET /metrics``.

Two kinds:
- Measured in the process that handles the request: request latency per route template, requests
  in flight, recording fetch time and failures, recognition time. Under gunicorn every worker
  writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py sets it to
  ``<IVR_DATA_DIR>/metrics`` and empties it when the master starts), and a scrape of any worker
  sums them all (prometheus_client's multi-process mode). When a worker exits, the master adds
  its values into one archive file per kind (``archive_dead_process``), so a scrape reads the
  files of the live workers and a few archives, however often workers were replaced.
- Counted in the database: calls by outcome, readings by status and channel, export batches by
  state. Triggers append a +1 or -1 as the rows are inserted, changed and deleted (``RecordCount``,
  migration 0015_volume), and a scrape sums those, folding them when many have piled up, so it
  reads a few hundred rows at most however many calls there are. The database
  is the record, so these are right whichever worker answers and survive restarts; a reading that
  moves from pending review to accepted moves between series, which a counter could not show. They
  are gauges: Prometheus' ``increase()``/``delta()`` give the rates.

- Read from this host's media server (``ivr media-server``'s health report) at scrape time:
  whether it answers and is ready, and its streams: active now, and since it started admitted,
  refused (full, behind, models loading), shed and unbound (not bound to a live call).

Access: a bearer token (IVR_METRICS_TOKEN), or a client address in IVR_METRICS_ALLOW (default:
loopback only). A request that came through a proxy (it carries X-Forwarded-For, Forwarded or
X-Real-IP) is never let in by address unless IVR_TRUST_PROXY is on and the proxy named the client
in X-Forwarded-For: otherwise its peer is the proxy, not the client.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import time
from pathlib import Path

from flask import Flask, Response, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.mmap_dict import MmapedDict
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from readings_store.models import RecordCount

from ivr.logsafe import safe_logger
from ivr.ops import health
from ivr.voice.recording_fetch import LATENCY_BUCKETS  # the speech steps' own series use them too

log = safe_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram("ivr_http_request_duration_seconds", "Time to answer a request, per route template",
                            ["route", "method"], buckets=LATENCY_BUCKETS)
RESPONSES = Counter("ivr_http_responses_total", "Responses, per route template and status code",
                    ["route", "method", "status"])
IN_FLIGHT = Gauge("ivr_http_requests_in_flight", "Requests being answered now", ["route"],
                  multiprocess_mode="livesum")


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label() -> str:
    """The request method, or "other": any token is a valid method, and each would be a series."""
    return request.method if request.method in METHODS else "other"


def route_label() -> str:
    """The matched route's template ("/voice/step/<step>"), never the raw path: a label per path
    would let any client create series without end."""
    rule = request.url_rule
    return rule.rule if rule is not None else "(unmatched)"


# --- counts from the database ---------------------------------------------------------------------

class RecordsCollector:
    """Calls, readings and export batches as counted in the database at scrape time."""

    def __init__(self, sessions):
        self.sessions = sessions

    def collect(self):
        calls = GaugeMetricFamily("ivr_calls", "Calls in the database, by outcome (in_progress: none yet)",
                                  labels=["outcome"])
        readings = GaugeMetricFamily("ivr_readings", "Readings in the database, by status and channel",
                                     labels=["status", "channel"])
        batches = GaugeMetricFamily("ivr_export_batches", "Export batches, by state (created, acknowledged)",
                                    labels=["state"])
        up = GaugeMetricFamily("ivr_records_up", "1 when the database counts below could be read")
        try:
            with self.sessions() as session:
                counted = read_record_counts(session)
        except SQLAlchemyError as exc:
            log.error("metrics: database counts unavailable: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        counts = {"created": 0, "acknowledged": 0}
        for family, first, second, n in counted:
            if family == "calls":
                calls.add_metric([first or "in_progress"], n)
            elif family == "readings":
                readings.add_metric([first, second], n)
            elif family == "export_batches" and first in counts:
                counts[first] = n
        batches.add_metric(["created"], counts["created"])
        batches.add_metric(["acknowledged"], counts["acknowledged"])
        up.add_metric([], 1)
        yield from (up, calls, readings, batches)


# Changes appended since the last fold beyond which a scrape folds them into one row per series.
COMPACT_AFTER = 500


def read_record_counts(session) -> list[tuple[str, str, str, int]]:
    """(family, first, second, count) of every series, summed from the rows the triggers appended
    (``RecordCount``); when many have piled up they are folded first, so a scrape sums a few
    hundred rows at most however many calls and readings there are."""
    query = (select(RecordCount.family, RecordCount.first, RecordCount.second, func.sum(RecordCount.n), func.count())
             .group_by(RecordCount.family, RecordCount.first, RecordCount.second))
    rows = session.execute(query).all()
    if sum(changes for *_, changes in rows) - len(rows) > COMPACT_AFTER:
        try:
            compact_record_counts(session)
        except SQLAlchemyError as exc:  # the counts read above are still right
            session.rollback()
            log.warning("metrics: record counts not folded: %s", exc.__class__.__name__)
    return [(family, first, second, int(total)) for family, first, second, total, _changes in rows]


def compact_record_counts(session) -> None:
    """Fold the appended changes into one row per series, in one transaction. On PostgreSQL one
    statement deletes the rows it sums (a change committed meanwhile is neither summed nor deleted,
    and counts at the next fold); SQLite has one writer at a time, so its two statements see the
    same rows."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            "WITH gone AS (DELETE FROM record_counts RETURNING family, first, second, n) "
            "INSERT INTO record_counts (family, first, second, n) "
            "SELECT family, first, second, sum(n) FROM gone GROUP BY family, first, second"))
    else:
        last = session.scalar(select(func.max(RecordCount.id)))
        session.execute(text(
            "INSERT INTO record_counts (family, first, second, n) SELECT family, first, second, sum(n) "
            "FROM record_counts WHERE id <= :last GROUP BY family, first, second"), {"last": last})
        session.execute(text("DELETE FROM record_counts WHERE id <= :last"), {"last": last})
    session.commit()


class MediaServerCollector:
    """This host's media server, as its health report says at scrape time (``ivr.ops.health``)."""

    def __init__(self, config):
        self.config = config

    def collect(self):
        report = health.media_server(self.config)
        if report is None:  # calls are not streamed: nothing to report
            return
        up = GaugeMetricFamily("ivr_media_server_up", "1 when this host's media server answers its health check")
        ready = GaugeMetricFamily("ivr_media_server_ready", "1 when the media server has its speech models loaded")
        answering = report["state"] != "unreachable"
        up.add_metric([], 1 if answering else 0)
        ready.add_metric([], 1 if report["state"] == "ok" else 0)
        yield up
        yield ready
        streams = report.get("streams")
        if not isinstance(streams, dict):
            return
        active = GaugeMetricFamily("ivr_media_streams_active", "Media streams being recognised now")
        active.add_metric([], float(streams.get("active", 0)))
        total = CounterMetricFamily("ivr_media_streams", "Media streams since the media server started, by outcome: "
                                    "admitted, refused (full, behind, models loading), shed (fell behind), "
                                    "unbound (no live call's token)", labels=["outcome"])
        for outcome in ("admitted", "refused", "shed", "unbound"):
            total.add_metric([outcome], float(streams.get(outcome, 0)))
        yield active
        yield total


# --- the endpoint ---------------------------------------------------------------------------------

def multiprocess_dir() -> Path | None:
    raw = os.environ.get(MULTIPROC_ENV)
    return Path(raw) if raw else None


def clear_multiprocess_dir(path: Path) -> int:
    """Remove the value files of earlier processes (at the gunicorn master's start); the folder is
    created if missing. Only prometheus_client's ``*.db`` files are touched. Returns how many."""
    path.mkdir(parents=True, exist_ok=True)
    removed = 0
    for item in path.glob("*.db"):
        item.unlink(missing_ok=True)
        removed += 1
    return removed


# Value files whose values add up across processes: a dead worker's are kept in the sum.
ADDITIVE_KINDS = ("counter", "histogram", "summary")


def archive_dead_process(path: Path, pid: int) -> int:
    """After worker ``pid`` exited (gunicorn's ``child_exit``, in the master): add its counter,
    histogram and summary values into one archive file per kind (``counter_archive.db``, ...) and
    remove its files, then drop its live gauges (``multiprocess.mark_process_dead``). A scrape
    reads every file in the folder: without this, each worker ever started would leave files that
    every scrape reads again, and scrapes would slow down with every restart. The values are the
    raw entries prometheus_client writes (histogram buckets not yet accumulated, as
    ``MultiProcessCollector.merge(accumulate=False)`` would give them), summed key by key, so the
    scraped totals do not change. Returns how many files of the worker were archived."""
    archived = 0
    for kind in ADDITIVE_KINDS:
        dead = path / f"{kind}_{pid}.db"
        if not dead.exists():
            continue
        archive = path / f"{kind}_archive.db"
        totals: dict[str, float] = {}
        for source in (archive, dead):
            if source.exists():
                for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(source)):
                    totals[key] = totals.get(key, 0.0) + value
        # Written under a name a scrape does not read, then put in place at once; the dead file
        # goes right after (a scrape in between may count it twice, for that instant).
        partial = path / f".{kind}_archive.partial"
        partial.unlink(missing_ok=True)
        merged = MmapedDict(str(partial))
        try:
            for key, value in totals.items():
                merged.write_value(key, value, 0.0)
        finally:
            merged.close()
        os.replace(partial, archive)
        dead.unlink()
        archived += 1
    multiprocess.mark_process_dead(pid, str(path))
    return archived


PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _allowed(config) -> tuple[bool, int]:
    """(allowed, status to refuse with): 401 when a token would let the client in, else 403."""
    token = config.metrics_token
    header = request.headers.get("Authorization", "")
    if token and header:
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True, 0
        return False, 401
    # Any proxy header means the peer may be a proxy: only a trusted proxy's X-Forwarded-For (which
    # ProxyFix has turned into remote_addr) names the client.
    proxied = any(name in request.headers for name in PROXY_HEADERS) and \
        not (config.trust_proxy and "X-Forwarded-For" in request.headers)
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        address = None
    if address is not None and not proxied:
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        if any(address in ipaddress.ip_network(net) for net in config.metrics_allow):
            return True, 0
    return False, 401 if token else 403


def metrics_view():
    services = current_app.extensions["ivr"]
    ok, status = _allowed(services.config)
    if not ok:
        log.warning("metrics refused to %s (HTTP %d)", request.remote_addr, status)
        headers = {"WWW-Authenticate": 'Bearer realm="metrics"'} if status == 401 else {}
        return Response("metrics: not allowed\n", status=status, mimetype="text/plain", headers=headers)
    path = multiprocess_dir()
    if path is not None:
        process_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry, path=str(path))
    else:
        process_registry = REGISTRY
    records = CollectorRegistry(auto_describe=False)
    records.register(RecordsCollector(services.sessions))
    records.register(MediaServerCollector(services.config))
    body = generate_latest(process_registry) + generate_latest(records)
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    """Time every request by route template, and serve /metrics."""

    @app.before_request
    def start_timer():
        g.metrics_start = time.perf_counter()
        g.metrics_route = route_label()
        IN_FLIGHT.labels(g.metrics_route).inc()

    @app.after_request
    def observe(response):
        start = g.pop("metrics_start", None)
        if start is not None:
            route = g.metrics_route
            method = method_label()
            REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - start)
            RESPONSES.labels(route, method, str(response.status_code)).inc()
        return response

    @app.teardown_request
    def leave(exc):
        route = g.pop("metrics_route", None)
        if route is not None:
            IN_FLIGHT.labels(route).dec()

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
