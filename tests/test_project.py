"""Project wiring: settings from the environment, schema and docs, CORS."""

import subprocess
import sys

import pytest
from django.db import connection

from tests.helpers import ROOT, Process, clean_env, free_port, place_order, request, wait_for


def check_settings(**env: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with the given environment."""
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_PRODUCTION": "1", "DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is required"),
        ({"DJANGO_PRODUCTION": "1", "DJANGO_SECRET_KEY": "x" * 50}, "DJANGO_ALLOWED_HOSTS is required"),
        ({"DJANGO_PRODUCTION": "1", "DJANGO_DEBUG": "1"}, "DJANGO_DEBUG=1 is not allowed with DJANGO_PRODUCTION=1"),
        ({"ORDER_CREATE_RATE": "100"}, "ORDER_CREATE_RATE must look like 100/s"),
        ({"ORDER_QUEUE_BACKEND": "rabbit"}, "ORDER_QUEUE_BACKEND must be one of thread, celery, immediate or a dotted"),
        (
            {"ORDER_QUEUE_BACKEND": "orders.backends.Nope"},
            "ORDER_QUEUE_BACKEND 'orders.backends.Nope' can't be imported",
        ),
        (
            {"ORDER_QUEUE_BACKEND": "orders.queueing.enqueue_order"},
            "ORDER_QUEUE_BACKEND 'orders.queueing.enqueue_order' is not a queue backend class",
        ),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be 0 or 1"),
        ({"ORDER_CONCURRENCY": "many"}, "ORDER_CONCURRENCY must be a whole number"),
        ({"ORDER_CONCURRENCY": "0"}, "ORDER_CONCURRENCY must be at least 1"),
        ({"ORDER_THREADS": "0"}, "ORDER_THREADS must be at least 1"),
        ({"ORDER_WORKERS": "16"}, "ORDER_WORKERS is no longer read; use ORDER_CONCURRENCY"),
        ({"ORDER_LEASE_SECONDS": "60"}, "ORDER_LEASE_SECONDS is no longer read; use ORDER_PROCESSING_TIMEOUT_SECONDS"),
        ({"ORDER_PROCESSING_TIMEOUT_SECONDS": "0"}, "ORDER_PROCESSING_TIMEOUT_SECONDS must be between 0.1 and"),
        ({"ORDER_PROCESSING_SECONDS": "fast"}, "ORDER_PROCESSING_SECONDS must look like"),
        ({"ORDER_PROCESSING_SECONDS": "5-1"}, "ORDER_PROCESSING_SECONDS must be finite"),
        ({"ORDER_PROCESSING_SECONDS": "inf"}, "ORDER_PROCESSING_SECONDS must be finite"),
        ({"ORDER_PROCESSING_SECONDS": "-1"}, "ORDER_PROCESSING_SECONDS must"),
        ({"ORDER_FAILURE_RATE": "1.5"}, "ORDER_FAILURE_RATE must be between"),
        ({"ORDER_FAILURE_RATE": "nan"}, "ORDER_FAILURE_RATE must be between"),
        ({"ORDER_MAX_ATTEMPTS": "0"}, "ORDER_MAX_ATTEMPTS must be at least 1"),
        (
            {"ORDER_PROCESSING_SECONDS": "1-30", "ORDER_PROCESSING_TIMEOUT_SECONDS": "30"},
            "ORDER_PROCESSING_SECONDS must stay below ORDER_PROCESSING_TIMEOUT_SECONDS",
        ),
        ({"ORDER_WORKER_AUTOSTART": "sometimes"}, "ORDER_WORKER_AUTOSTART must be 0 or 1"),
        ({"CACHE_URL": "memcached://user:s3cret@cache:11211"}, "CACHE_URL must be a Redis URL"),
        ({"CACHE_URL": "cache:6379"}, "CACHE_URL must be a Redis URL"),
        ({"API_AUTH": "oauth"}, "API_AUTH names authentication schemes, of which there is one: jwt"),
        ({"API_OPEN": "1", "API_TOKENS": "a-token"}, "API_OPEN=1 contradicts API_TOKENS or API_AUTH"),
        ({"API_OPEN": "0"}, "API_OPEN=0 needs API_TOKENS or API_AUTH=jwt"),
        (
            {"DJANGO_PRODUCTION": "1", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "a.example"},
            "DJANGO_PRODUCTION=1 needs API_TOKENS or API_AUTH=jwt, or API_OPEN=1",
        ),
        ({"JWT_JWKS_URL": "https://idp.example/jwks"}, "JWT_JWKS_URL is set, but API_AUTH does not name jwt"),
        (
            {"API_AUTH": "jwt", "JWT_JWKS_URL": "https://idp.example/jwks", "JWT_ISSUER": "https://idp.example/"},
            "JWT_JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE",
        ),
        ({"JWT_ACCESS_TOKEN_MINUTES": "0"}, "JWT_ACCESS_TOKEN_MINUTES must be at least 1"),
        ({"JWT_LOGIN_RATE": "10"}, "JWT_LOGIN_RATE must look like 100/s"),
    ],
)
def test_bad_settings_stop_startup_with_a_clear_message(env, message):
    result = check_settings(**env)

    assert result.returncode != 0
    assert message in result.stderr
    assert "s3cret" not in result.stderr  # a URL's password never reaches the terminal


@pytest.mark.parametrize("value", ["0", "2", "1-5", "0.5-1.5"])
def test_processing_seconds_accepts_a_fixed_time_or_a_range(value):
    assert check_settings(ORDER_PROCESSING_SECONDS=value).returncode == 0


@pytest.mark.parametrize("access", [{"API_TOKENS": "a-token"}, {"API_AUTH": "jwt"}, {"API_OPEN": "1"}])
def test_production_settings_start_with_a_secret_key_allowed_hosts_and_the_api_closed_or_open_on_purpose(access):
    env = {"DJANGO_PRODUCTION": "1", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "a.example"}
    result = check_settings(**env, **access)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_schema_describes_every_order_operation(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/orders/"]) >= {"get", "post"}
    assert "get" in paths["/api/orders/{order_id}/status/"]
    assert "put" not in paths["/api/orders/{order_id}/"]
    create = paths["/api/orders/"]["post"]
    assert "Idempotency-Key" in [parameter["name"] for parameter in create["parameters"]]
    assert {"201", "400", "409", "413", "415", "422"} <= set(create["responses"])


@pytest.mark.django_db
def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"cdn" not in response.content.lower()


@pytest.mark.django_db
def test_cors_allows_configured_origins_only(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]

    allowed = api.get("/api/orders/", headers={"Origin": "https://shop.example.com"})
    other = api.get("/api/orders/", headers={"Origin": "https://evil.example.com"})

    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Access-Control-Allow-Origin" not in other


@pytest.mark.django_db
def test_sqlite_is_configured_for_concurrent_writers():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-only settings")
    with connection.cursor() as cursor:
        names = ["journal_mode", "synchronous", "wal_autocheckpoint"]
        pragmas = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in names}
        busy_timeout_ms = cursor.execute("PRAGMA busy_timeout").fetchone()[0]

    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "wal_autocheckpoint": 10_000}  # 1 is NORMAL
    assert busy_timeout_ms >= 20_000
    assert connection.transaction_mode == "IMMEDIATE"


def test_make_dev_runserver_processes_orders_in_its_serving_child(database, tmp_path):
    """runserver's serving child loads order_system.wsgi, so its worker runs; the autoreloader parent only watches."""
    port = free_port()
    dev = Process(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        database,
        tmp_path / "dev.log",
        DJANGO_DEBUG="1",
    )
    dev.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), timeout=30)
        assert request(url, "GET", "/readyz") == (200, {"status": "ready"})
        assert place_order(url)[0] == 201
        wait_for(lambda: database.statuses() == {"COMPLETED": 1})
    finally:
        dev.stop()


def healthy(url: str) -> bool:
    try:
        return request(url, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def test_management_commands_start_no_worker_threads():
    code = "import threading; print(sorted(t.name for t in threading.enumerate() if t.name.startswith('order-')))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


@pytest.mark.django_db
def test_cors_preflight_lets_browsers_send_an_idempotency_key(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]

    response = api.options(
        "/api/orders/",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )

    assert "idempotency-key" in response["Access-Control-Allow-Headers"]
    assert "DELETE" not in response["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(("timeout", "lease"), [("30", 40.0), ("0.5", 10.5), ("600", 610.0)])
def test_the_lease_is_the_processing_timeout_plus_10_s(timeout, lease):
    code = "import django; django.setup(); from django.conf import settings; print(settings.ORDER_LEASE_SECONDS)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            "PATH": "",
            "DJANGO_SETTINGS_MODULE": "order_system.settings",
            "ORDER_PROCESSING_SECONDS": "0",
            "ORDER_PROCESSING_TIMEOUT_SECONDS": timeout,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert float(result.stdout) == lease, result.stderr
