"""Servers that tests start in a subprocess, without port races and patient with a loaded machine.

* ``listening_socket()``: a socket bound and listening on a free port, handed to the server as an
  inherited file descriptor, so nothing can take the port between choosing it and serving on it.
* ``refused_port()``: a port that is bound but never listens, so a connection to it is refused for
  as long as the block lasts (nobody else can bind it meanwhile).
* ``wait_until_ready``: polls with a generous deadline (a busy 2-core machine is normal) and fails
  with the server's own log.
* ``gunicorn_server``: the repository's ``gunicorn.conf.py`` on such a socket, ready and then stopped.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
# Starting gunicorn with its workers takes about 2 s on a quiet machine; far more under load.
READY_DEADLINE = 120.0


@contextmanager
def listening_socket(host: str = "127.0.0.1") -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))  # bound, never listening: connections get "refused"
        yield sock.getsockname()[1]


def wait_until_ready(ready: Callable[[], bool], proc: subprocess.Popen, log: Path, what: str,
                     deadline: float = READY_DEADLINE) -> None:
    """Return once ``ready()`` is true; fail with the server's log if it exits or the deadline passes."""
    until = time.monotonic() + deadline
    while True:
        try:
            if ready():
                return
        except OSError:  # connection refused or reset while starting
            pass
        if proc.poll() is not None or time.monotonic() > until:
            proc.kill()
            proc.wait(10)
            why = f"exited with {proc.returncode}" if proc.returncode not in (None, -9) else \
                f"was not ready within {deadline:.0f} s"
            pytest.fail(f"{what} {why}; its log:\n{log_tail(log)}")
        time.sleep(0.1)


def log_tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log: {exc})"


@contextmanager
def gunicorn_server(env: dict, log_path: Path, *options: str,
                    ready: Callable[[subprocess.Popen], bool] = lambda proc: True
                    ) -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn with the repository's ``gunicorn.conf.py`` and ``options``, serving on a socket the
    test already holds (fd://, so no other process can take the port); yields (base URL, process)
    once ``/healthz`` answers 200 and ``ready(process)``, then stops it with SIGTERM and fails the
    test if it does not stop."""
    with listening_socket() as sock, open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), *options,
                                 "--bind", f"fd://{sock.fileno()}"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        wait_until_ready(lambda: requests.get(base + "/healthz", timeout=5).status_code == 200 and ready(proc),
                         proc, log_path, "gunicorn")
        yield base, proc
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"gunicorn did not stop on SIGTERM; its log:\n{log_tail(log_path)}")
