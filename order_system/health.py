"""Liveness (/healthz, no database) and readiness (/readyz: an order could be stored and processed now)."""

import shutil
import sqlite3
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from orders.queueing import get_backend

# How long a probe waits for the writer lock: writers queue for it in turn, and each holds it for one transaction.
SQLITE_LOCK_WAIT_SECONDS = 2.0


def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Send traffic here only if orders can be stored and processed; a 503 names what is not ready, and why."""
    checks = {"database": _database_problem(), "queue": get_backend().health()}
    problems = {name: problem for name, problem in checks.items() if problem}
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ready"})


def _database_problem() -> str | None:
    """Why an order could not be stored now, if it could not: a database that answers may still refuse writes."""
    try:
        if connection.vendor == "sqlite" and not connection.is_in_memory_db():
            return _sqlite_problem(Path(connection.settings_dict["NAME"]))
        if connection.vendor == "postgresql":
            return _postgres_problem()
        if connection.vendor == "mysql":
            return _mysql_problem()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {exc}"
    return None


def _sqlite_problem(path: Path) -> str | None:
    free_mb = shutil.disk_usage(path.parent).free // 2**20
    if free_mb < settings.READYZ_MIN_FREE_MB:
        return f"{free_mb} MB free beside the database, under READYZ_MIN_FREE_MB={settings.READYZ_MIN_FREE_MB}"
    if connection.in_atomic_block:
        return None  # this connection is in a transaction, so it holds the write lock (transaction_mode IMMEDIATE)
    try:
        with connection.hold_writer_lock(timeout=SQLITE_LOCK_WAIT_SECONDS):
            # Its own connection, so a lock held elsewhere costs this probe seconds, not the request connection's 30.
            probe = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=SQLITE_LOCK_WAIT_SECONDS)
            try:
                probe.execute("BEGIN IMMEDIATE")  # the write lock, as an order's insert takes it
                probe.rollback()
            finally:
                probe.close()
    except (TimeoutError, sqlite3.OperationalError) as exc:  # a lock held too long, or a read-only file
        return f"cannot write: {exc}"
    return None


def _postgres_problem() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
        in_recovery, read_only = cursor.fetchone()
    if in_recovery:
        return "the database is a standby in recovery and takes no writes"
    if read_only == "on":
        return "the database is read-only (default_transaction_read_only)"
    return None


def _mysql_problem() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@global.read_only AS read_only, @@global.innodb_read_only AS innodb_read_only")
        settings_now = zip([column[0] for column in cursor.description], cursor.fetchone(), strict=True)
    # 0 or 1; MariaDB 11 also says OFF, ON or a NO_LOCK mode, and each but OFF refuses writes.
    if on := [name for name, value in settings_now if str(value) not in {"0", "OFF"}]:
        return f"the database is read-only ({', '.join(on)}), as a replica is"
    return None
