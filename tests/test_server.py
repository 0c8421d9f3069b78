"""make run's server: what it says when it starts, and the settings it reads."""

import subprocess
import sys

from tests.helpers import ROOT, Server, SqliteDatabase


def test_the_server_says_where_everything_is_when_it_starts(tmp_path):
    server = Server(SqliteDatabase(tmp_path / "orders.sqlite3"), tmp_path / "server.log", ORDER_WORKER_AUTOSTART="0")
    server.start()
    server.stop()

    for path in ("/api/orders/", "/api/docs/", "/dashboard/", "/admin/", "/healthz"):
        assert f"{server.url}{path}" in server.output()
    assert "manage.py createsuperuser" in server.output()


def test_a_bad_thread_count_stops_the_server_naming_it():
    result = subprocess.run(
        [sys.executable, "-m", "order_system.server", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env={"PATH": "", "WEB_THREADS": "zero"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "WEB_THREADS must be a whole number, not 'zero'" in result.stderr
