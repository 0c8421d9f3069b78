"""Shared fixtures: an API client, fast processing, real databases and brokers, and real server subprocesses."""

import contextlib
import os
import signal
import sys
import uuid

import kombu
import kombu.exceptions
import psycopg
import pytest
import redis
from rest_framework.test import APIClient

from orders.queueing import get_backend
from tests.helpers import MysqlDatabase, PostgresDatabase, Process, Server, SqliteDatabase, mysql_connect


@pytest.fixture(autouse=True)
def no_processing_delay(settings):
    """The suite runs with ORDER_PROCESSING_SECONDS=0."""
    settings.ORDER_PROCESSING_SECONDS = (0.0, 0.0)


@pytest.fixture
def api():
    return APIClient()


# Worker-only processes, besides the server: the thread backend's and a Celery worker on its broker.
WORKER_COMMANDS = {
    "worker": [sys.executable, "manage.py", "process_orders"],
    "celery": [sys.executable, "-m", "celery", "-A", "order_system", "worker", "--loglevel=INFO", "--concurrency=4"],
    # The pool the README recommends for I/O-bound processors.
    "celery-threads": [
        *[sys.executable, "-m", "celery", "-A", "order_system", "worker", "--loglevel=INFO"],
        *["--pool=threads", "--concurrency=100"],
    ],
}
POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432")
MYSQL_SERVER = os.environ.get("TEST_MYSQL_SERVER", "mysql://root@127.0.0.1:3306")
# Not database 13: test runs of checkouts older than the per-test queues (celery_queue) FLUSHDB it while they run.
REDIS_BROKER = os.environ.get("TEST_REDIS_BROKER", "redis://127.0.0.1:6379/14")
RABBITMQ_BROKER = os.environ.get("TEST_RABBITMQ_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


def service_missing(service: str, reason: object) -> None:
    """Skip a test whose service is down, except in CI (REQUIRE_SERVICES=1), where that is a failure."""
    message = f"{service} is not reachable: {reason}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


# The fixture giving a fresh database of the kind DATABASE_URL names, by its scheme.
SERVER_DATABASES = {"postgres": "postgres_database", "mysql": "mysql_database"}


@pytest.fixture
def database(request, tmp_path):
    """The database the server subprocesses of one test share: a SQLite file, or one of DATABASE_URL's kind."""
    scheme = os.environ.get("DATABASE_URL", "").partition("://")[0]
    if scheme in SERVER_DATABASES:
        return request.getfixturevalue(SERVER_DATABASES[scheme])
    return SqliteDatabase(tmp_path / "orders.sqlite3")


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database on the local server, dropped after the test."""
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_missing("PostgreSQL", exc)
    name = f"orders_e2e_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PostgresDatabase(f"{POSTGRES_SERVER}/{name}")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mysql_database():
    """A fresh MariaDB (or MySQL) database on the local server, dropped after the test."""
    try:
        import MySQLdb  # only where mysqlclient could be built (Makefile)
    except ImportError as exc:
        service_missing("MySQL's driver, mysqlclient,", exc)
    try:
        admin = mysql_connect(MYSQL_SERVER, timeout=3)
    except MySQLdb.OperationalError as exc:
        service_missing("MariaDB", exc)
    name = f"orders_e2e_{uuid.uuid4().hex[:12]}"
    cursor = admin.cursor()
    cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield MysqlDatabase(f"{MYSQL_SERVER}/{name}")
    finally:
        # Connections a killed process left behind would keep DROP DATABASE waiting for their locks.
        cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", [name])
        for (connection_id,) in cursor.fetchall():
            with contextlib.suppress(MySQLdb.OperationalError):  # it may have ended meanwhile
                cursor.execute(f"KILL {int(connection_id)}")
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def celery_queue() -> str:
    """A broker queue of this test's own: other test runs may share the broker, and their workers take its tasks."""
    return f"orders-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_broker(celery_queue):
    """Redis as the Celery broker, on a queue of this test's own; its keys are deleted after the test."""
    client = redis.Redis.from_url(REDIS_BROKER, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        service_missing("Redis", exc)
    try:
        yield {"CELERY_BROKER_URL": REDIS_BROKER, "CELERY_QUEUE": celery_queue}
    finally:
        # Not FLUSHDB: that would empty the queues of other test runs on this database too.
        for key in client.scan_iter(f"*{celery_queue}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def processes(tmp_path, database):
    """Start real server and worker subprocesses; each is stopped by its PID when the test ends, whatever happened."""
    started: list[Process] = []

    def start(kind: str = "server", *, args: tuple[str, ...] = (), **env: str) -> Process:
        log = tmp_path / f"{kind}-{len(started)}.log"
        if kind == "server":
            process = Server(database, log, **env)
        else:
            command = WORKER_COMMANDS[kind] + (["-n", f"worker{len(started)}@%h"] if kind.startswith("celery") else [])
            command += args
            process = Process(command, database, log, **env)
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
def start_worker(transactional_db, settings):
    """Start this process's real thread backend, fast, with any settings given; it stops when the test ends."""
    backend = get_backend()

    def start(**overrides):
        settings.ORDER_SWEEP_SECONDS = 0.05
        settings.ORDER_RETRY_BACKOFF_SECONDS = 0.05
        for name, value in overrides.items():
            setattr(settings, name, value)
        backend.start()
        return backend

    try:
        yield start
    finally:
        backend.stop()


@pytest.fixture
def order_worker(start_worker):
    """This process's real worker: orders created in the test are processed by it."""
    return start_worker()


@pytest.fixture
def rabbitmq_broker(celery_queue):
    """RabbitMQ as the Celery broker, on a queue of this test's own; it is deleted after the test."""
    try:
        with kombu.Connection(RABBITMQ_BROKER, connect_timeout=3) as broker:
            broker.ensure_connection(max_retries=0)
    except (OSError, kombu.exceptions.OperationalError) as exc:
        service_missing("RabbitMQ", exc)
    try:
        yield {"CELERY_BROKER_URL": RABBITMQ_BROKER, "CELERY_QUEUE": celery_queue}
    finally:
        with kombu.Connection(RABBITMQ_BROKER, connect_timeout=3) as broker:
            # Celery declares the queue and an exchange of the same name.
            kombu.Queue(celery_queue, channel=broker.default_channel).delete()
            kombu.Exchange(celery_queue, channel=broker.default_channel).delete()
