"""/readyz means writable: a full disk, a held write lock, a read-only PostgreSQL or MariaDB make it fail, and it
recovers."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction

from tests.helpers import Server, SqliteDatabase, mysql_connect, place_order, request, wait_for


def readyz(server) -> tuple[int, dict]:
    return request(server.url, "GET", "/readyz")


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB filesystem of its own, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], check=True, timeout=10)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True, timeout=10)


def fill(disk: Path) -> Path:
    """Write zeros until the filesystem has no room left."""
    filler = disk / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):  # ENOSPC: full
        while True:
            out.write(bytes(1 << 20))
            out.flush()
    return filler


def test_readyz_fails_while_the_database_disk_is_full_and_recovers_when_space_is_freed(small_disk, tmp_path):
    server = Server(SqliteDatabase(small_disk / "orders.sqlite3"), tmp_path / "server.log", READYZ_MIN_FREE_MB="4")
    server.start()
    try:
        assert readyz(server) == (200, {"status": "ready"})
        filler = fill(small_disk)

        status, body = readyz(server)
        assert status == 503
        assert body["problems"]["database"] == "0 MB free beside the database, under READYZ_MIN_FREE_MB=4"

        filler.unlink()
        assert readyz(server) == (200, {"status": "ready"})
        assert place_order(server.url)[0] == 201
    finally:
        server.stop()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write lock")
def test_readyz_fails_while_another_connection_holds_the_write_lock(transactional_db, client, order_worker):
    assert client.get("/readyz").status_code == 200
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=5)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.get("/readyz")
    finally:
        holder.rollback()
        holder.close()

    assert response.status_code == 503
    assert response.json()["problems"] == {"database": "cannot write: database is locked"}
    assert client.get("/readyz").status_code == 200


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's writers take turns")
def test_readyz_fails_while_a_writer_of_this_process_holds_the_writer_lock(transactional_db, client, order_worker):
    writing, done = threading.Event(), threading.Event()

    def hold_the_writer_lock():
        with transaction.atomic():
            writing.set()
            done.wait(30)
        connection.close()

    writer = threading.Thread(target=hold_the_writer_lock, daemon=True)
    writer.start()
    try:
        assert writing.wait(10)
        response = client.get("/readyz")
    finally:
        done.set()
        writer.join(10)

    assert response.status_code == 503
    assert response.json()["problems"] == {"database": "cannot write: another writer held the lock for 2.0 s"}
    assert client.get("/readyz").status_code == 200


def test_readyz_fails_while_postgresql_is_read_only(postgres_database, tmp_path):
    server = Server(postgres_database, tmp_path / "server.log")
    server.start()
    name = postgres_database.url.rsplit("/", 1)[1]

    def set_read_only(value: str) -> None:
        """The database's default for new sessions; the server's sessions are ended so that it reconnects."""
        admin_url = postgres_database.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )

    try:
        assert readyz(server) == (200, {"status": "ready"})
        set_read_only("on")

        _, body = wait_for(lambda: readyz(server), until=lambda answer: answer[0] == 503)
        assert body["problems"] == {"database": "the database is read-only (default_transaction_read_only)"}

        set_read_only("off")
        assert wait_for(lambda: readyz(server), until=lambda answer: answer[0] == 200) == (200, {"status": "ready"})
        assert place_order(server.url)[0] == 201
    finally:
        server.stop()


def test_readyz_fails_while_mariadb_is_read_only(mysql_database, tmp_path):
    server = Server(mysql_database, tmp_path / "server.log")
    server.start()
    admin = mysql_connect(mysql_database.url)

    def set_read_only(value: str) -> None:
        """The whole server's setting, as on a replica; this test's user keeps its right to write."""
        admin.cursor().execute(f"SET GLOBAL read_only = {value}")

    try:
        assert readyz(server) == (200, {"status": "ready"})
        set_read_only("ON")

        status, body = readyz(server)
        assert status == 503
        assert body["problems"] == {"database": "the database is read-only (read_only), as a replica is"}

        set_read_only("OFF")
        assert readyz(server) == (200, {"status": "ready"})
        assert place_order(server.url)[0] == 201
    finally:
        set_read_only("OFF")
        admin.close()
        server.stop(signal.SIGKILL)  # how it stops is not this test's concern
