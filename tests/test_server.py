"""make run's server: what it says when it starts, the settings it reads, and the requests it counts."""

import subprocess
import sys

import pytest
from django.conf import settings
from django.http import HttpResponse

from order_system.middleware import CountRequests
from order_system.threads import requests_in_flight
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


def test_every_request_is_counted_while_it_is_answered_even_one_that_fails(rf):
    seen = []

    def answer(request):
        seen.append(bool(requests_in_flight))
        if request.path == "/fails/":
            raise ValueError("the view failed")
        return HttpResponse()

    count = CountRequests(answer)
    count(rf.get("/"))
    with pytest.raises(ValueError):
        count(rf.get("/fails/"))

    assert seen == [True, True]
    assert not requests_in_flight
    assert settings.MIDDLEWARE[0] == "order_system.middleware.CountRequests"
