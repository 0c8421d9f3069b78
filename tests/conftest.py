"""Shared fixtures: an API client, fast processing, and a real server in a subprocess."""

import signal
import sys

import pytest
from rest_framework.test import APIClient

from tests.helpers import Database, Process, Server


@pytest.fixture(autouse=True)
def no_processing_delay(settings):
    """The suite runs with ORDER_PROCESSING_SECONDS=0."""
    settings.ORDER_PROCESSING_SECONDS = (0.0, 0.0)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def database(tmp_path):
    """A SQLite file shared by the server subprocesses of one test."""
    return Database(tmp_path / "orders.sqlite3")


@pytest.fixture
def processes(tmp_path, database):
    """Start real server and worker subprocesses; each is stopped by its PID when the test ends, whatever happened."""
    started: list[Process] = []

    def start(kind: str = "server", **env: str) -> Process:
        log = tmp_path / f"{kind}-{len(started)}.log"
        if kind == "server":
            process = Server(database, log, **env)
        else:
            process = Process([sys.executable, "manage.py", "process_orders"], database, log, **env)
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop(signal.SIGKILL)


@pytest.fixture
def server(processes):
    """One running server."""
    return processes()


@pytest.fixture
def order_worker(transactional_db, settings):
    """This process's real worker, fast: orders created in the test are processed by its threads."""
    from orders import queueing

    settings.ORDER_SWEEP_SECONDS = 0.05
    settings.ORDER_RETRY_BACKOFF_SECONDS = 0.05
    worker = queueing.get_worker()
    worker.start()
    try:
        yield worker
    finally:
        queueing.stop_worker()
