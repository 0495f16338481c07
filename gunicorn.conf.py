"""gunicorn settings for the meter-reading robot.

    gunicorn -c gunicorn.conf.py --bind 127.0.0.1:8000

Every IVR_ setting comes from the environment as usual (see README, Configuration); command-line
options override what is set here (e.g. ``--workers 2``).

The workload: Twilio's webhooks are short (a database read, a conditional update, a commit), but a
speech answer first waits for the recording to be fetched (I/O, up to IVR_RECORDING_FETCH_BUDGET)
and is then recognised by Vosk (CPU, a second or so per answer). Hence one process per CPU core for
recognition, and a few threads per process so that fetches and database waits overlap.

Vosk models are large (hundreds of MB each) and read-only once loaded. With ``preload_app`` the app
is created in the master before it forks, and ``create_app(preload_models=True)`` loads the model of
every language set to ``vosk`` at that moment: the workers share those pages copy-on-write instead
of each loading its own copy (``benchmarks/worker_memory_bench.py`` measures the difference).
Changing code or models therefore needs a restart of the master (``systemctl restart``), not just
a HUP.
"""
import multiprocessing
import os

from ivr.config import access_log, data_folder, log_format
from ivr.ops.logs import gunicorn_logconfig

wsgi_app = "ivr.app:create_app(preload_models=True)"
preload_app = True

# Recognition is CPU-bound: more processes than cores would only queue. WEB_CONCURRENCY is the
# usual way to override the count without editing this file.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
# gunicorn's gthread worker, noting when each request is queued for a thread: under overload a
# Twilio webhook that waited more than IVR_QUEUE_WAIT seconds for a thread is answered at once
# with the fallback's words (an apology, then the operator or "call back later") instead of being
# served after Twilio has given up at 15 s (``timeout`` does not count time spent queued).
worker_class = "ivr.ops.gthread_worker.QueueTimedWorker"
threads = 4

# Twilio gives up on a webhook after 15 s and then calls the fallback URL: a worker silent for
# longer than that serves nobody, so it is replaced sooner. (With gthread a single slow request
# does not count as silence; the app's own budgets bound a request: see IVR_RECORDING_FETCH_BUDGET.)
timeout = 14
graceful_timeout = 14  # a restart lets webhooks in flight finish within Twilio's limit
keepalive = 5  # behind nginx, which reuses upstream connections

# Replace workers now and then (memory fragmentation in long-lived recognisers); new workers are
# forked from the master, so they share the preloaded models too.
max_requests = 5000
max_requests_jitter = 500

# A line per request unless IVR_ACCESS_LOG=no (nginx in front logs the same requests; the line
# costs a few per cent of a webhook's server CPU, README: Logs). The logger class skips it when
# this is None.
accesslog = "-" if access_log() else None
errorlog = "-"
# The TLS proxy on the same host is trusted for X-Forwarded-*; the app's own handling of those
# headers is IVR_TRUST_PROXY.
forwarded_allow_ips = "127.0.0.1,::1"

# gunicorn's own lines and the app's, one JSON object per line unless IVR_LOG_FORMAT=text.
logconfig_dict = gunicorn_logconfig(log_format() or "json")
logger_class = "ivr.ops.logs.GunicornLogger"

# Prometheus metrics from every worker, summed at /metrics: each process writes its values to
# files in this folder, which must be set before the app is loaded and is emptied at each start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data_folder() / "metrics"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server):
    from ivr.ops.metrics import clear_multiprocess_dir, multiprocess_dir

    clear_multiprocess_dir(multiprocess_dir())


def child_exit(server, worker):
    from ivr.ops.metrics import archive_dead_process, multiprocess_dir

    # Its counts are added to the archive files and its own files removed (a scrape reads every
    # file: they would pile up with each restart); its requests in flight no longer count.
    archive_dead_process(multiprocess_dir(), worker.pid)
