"""Test helpers: real threads, real databases, and real server and worker subprocesses."""

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

from django.db import connection

from tests.environment import is_setting

ROOT = Path(__file__).resolve().parent.parent

# The environment docs/operations.md ("Running in production") documents, with a throwaway key and token.
PRODUCTION_ENV = {
    "DJANGO_PRODUCTION": "1",
    "DJANGO_SECRET_KEY": "k3y-for-tests-only-5f0a8c1e9b7d4263a1f0c2e8b6d9f4a7c3e1b5d8",
    "API_TOKENS": "t0ken-for-tests-only-9c2e4b7a1d",
    "DJANGO_ALLOWED_HOSTS": "orders.example.com",
    "DJANGO_BEHIND_PROXY": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
}
ORDERS_URL = "/api/orders/"


def clean_env(**env: str) -> dict:
    """This process's environment without the project's settings, then env: a subprocess sees what its test sets."""
    inherited = {name: value for name, value in os.environ.items() if not is_setting(name)}
    return {**inherited, "DJANGO_SETTINGS_MODULE": "order_system.settings", **env}


def order_body(**fields) -> dict:
    """A valid body for POST /api/orders/; fields replace or add to it."""
    return {"user_id": "u", "item_ids": [1], "total_amount": "9.99", **fields}


def post_order(client, body: dict | None = None, **headers: str):
    """POST a body (a valid one by default) as JSON to /api/orders/ through a Django or DRF test client."""
    payload = json.dumps(order_body() if body is None else body)
    return client.post(ORDERS_URL, payload, content_type="application/json", headers=headers)


def closing(task):
    """task, to run on a thread of its own, which then closes its database connection (each thread has its own)."""

    def run():
        try:
            return task()
        finally:
            connection.close()

    return run


def run_concurrently(task, count: int, timeout: float = 60) -> list:
    """Run task() in count real threads released at the same instant; returns their results."""
    barrier = threading.Barrier(count)
    results = []

    def run():
        barrier.wait(timeout)
        results.append(task())

    threads = [threading.Thread(target=closing(run)) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert len(results) == count, "a thread did not finish in time"
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Database:
    """A database for server subprocesses, migrated by each of them, that the test can read directly."""

    url: str

    def migrate(self, env: dict | None = None) -> None:
        command = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
        subprocess.run(
            command, cwd=ROOT, env={**clean_env(**(env or {})), "DATABASE_URL": self.url}, check=True, timeout=120
        )

    def query(self, sql: str) -> list[tuple]:
        raise NotImplementedError

    def statuses(self) -> Counter:
        return Counter(dict(self.query("SELECT status, COUNT(*) FROM orders_order GROUP BY status")))


class SqliteDatabase(Database):
    """A SQLite file."""

    def __init__(self, path: Path):
        self.path = path
        self.url = f"sqlite:///{path}"

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.path, timeout=30) as db:
            return db.execute(sql).fetchall()


class PostgresDatabase(Database):
    """A PostgreSQL database of its own on the local server."""

    def __init__(self, url: str):
        self.url = url

    def query(self, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as db:
            return [tuple(str(value) if isinstance(value, UUID) else value for value in row) for row in db.execute(sql)]


class MysqlDatabase(Database):
    """A MySQL or MariaDB database of its own on the local server."""

    def __init__(self, url: str):
        self.url = url

    def query(self, sql: str) -> list[tuple]:
        """Rows as PostgresDatabase gives them: UUIDs as their canonical strings, JSON decoded (both are text here)."""
        db = mysql_connect(self.url)
        try:
            cursor = db.cursor()
            cursor.execute(sql)
            readers = [MYSQL_COLUMN_READERS.get(column[0], lambda value: value) for column in cursor.description]
            return [tuple(read(value) for read, value in zip(readers, row, strict=True)) for row in cursor.fetchall()]
        finally:
            db.close()


def mysql_connect(url: str, timeout: int = 10):
    """A MySQLdb connection to mysql://user[:password]@host:port[/database]."""
    import MySQLdb  # only where mysqlclient could be built (Makefile)

    parts = urlsplit(url)
    return MySQLdb.connect(
        host=parts.hostname,
        port=parts.port,
        user=parts.username,
        password=parts.password or "",
        database=parts.path.lstrip("/"),
        charset="utf8mb4",
        connect_timeout=timeout,
    )


# The orders table's columns MySQL stores as text: a UUID as its 32 hex digits, JSON as its text.
MYSQL_COLUMN_READERS = {
    "order_id": lambda value: str(UUID(value)),
    "item_ids": json.loads,
    "result": lambda value: None if value is None else json.loads(value),
}


class Process:
    """A subprocess of this project (the server or a management command) in its own process group, with a log file."""

    def __init__(self, command: list[str], database: Database, log: Path, **env: str):
        self.command = command
        self.database = database
        self.log = log
        self.env = clean_env(**{"DATABASE_URL": database.url, "ORDER_PROCESSING_SECONDS": "0", **env})
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.database.migrate(self.env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a signal reaches its children too
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Signal the whole process group by the PID we started, and wait; SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left of the group after its leader exited

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Server(Process):
    """A real server, started as `make run` starts it (granian), on a free port of 127.0.0.1."""

    def __init__(self, database: Database, log: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "order_system.server", "--bind", f"127.0.0.1:{self.port}"]
        super().__init__(command, database, log, **env)

    def start(self, timeout: float = 30) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not come up in {timeout}s:\n{self.output()}")


def children(pid: int) -> list[int]:
    """The child processes of a process (a server's worker processes)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def tcp_sockets(port: int, state: str) -> set[str]:
    """Inodes of the IPv4 sockets on this local port in this state (0A: listening, 01: established)."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return {row[9] for row in rows if int(row[1].split(":")[1], 16) == port and row[3] == state}


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets a process holds open."""
    links = (os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    return {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}


def wait_for(condition, timeout: float = 30, interval: float = 0.05, until=bool):
    """Poll until until(condition()) holds and return the last result; fail the test after timeout, with that result."""
    deadline = time.monotonic() + timeout
    while not until(result := condition()):
        assert time.monotonic() < deadline, (
            f"not true after {timeout}s: {condition.__doc__ or condition}; it last returned {result!r}"
        )
        time.sleep(interval)
    return result


def wait_for_statuses(database: Database, expected: dict, timeout: float = 30) -> None:
    """Wait until the orders' statuses are exactly these counts; a failure shows the counts last seen."""
    wait_for(database.statuses, timeout=timeout, until=lambda statuses: statuses == expected)


def request(
    url: str, method: str, path: str, body: dict | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    """One HTTP request on a fresh connection; the JSON body is read with exact decimals."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, payload, headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read(), parse_float=Decimal)
    finally:
        connection.close()


def place_order(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """POST an order (a valid one by default) to a running server."""
    return request(url, "POST", ORDERS_URL, order_body() if body is None else body, headers)


def place_orders(server, count: int, concurrency: int = 50) -> set[str]:
    """POST count orders from concurrency threads at once; all must be accepted. Returns their ids."""
    with ThreadPoolExecutor(max_workers=min(count, concurrency)) as pool:
        results = list(pool.map(lambda _: place_order(server.url), range(count)))
    assert [status for status, _ in results] == [201] * count
    return {created["order_id"] for _, created in results}


def completed_ids(process) -> list[str]:
    """Order ids from a process's transition log lines that moved an order to COMPLETED."""
    return re.findall(r"order_id=(\S+) from=PROCESSING to=COMPLETED", process.output())
