"""Safe defaults: debug off, a generated secret key, JSON answers to bad requests, hidden URL passwords, and admin
login throttling (its settings; the lockouts are in tests/test_admin.py)."""

import json
import os
import re
import stat
import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import Client
from django.views.debug import get_default_exception_reporter_filter, technical_500_response

from tests.helpers import ROOT

READ_SETTINGS = """
import django, json
django.setup()
from django.conf import settings
print(json.dumps({name: str(getattr(settings, name)) for name in %r}))
"""


def local_settings(*names: str, **env: str) -> dict:
    """Some settings as a fresh interpreter with only this environment reads them."""
    result = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS % (names,)],
        cwd=ROOT,
        env={"PATH": "", "DJANGO_SETTINGS_MODULE": "order_system.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["False", "['localhost', '127.0.0.1', '[::1]']", "False", "False", "False"]),
        (
            {
                "DJANGO_PRODUCTION": "1",
                "DJANGO_SECRET_KEY": "x" * 50,
                "DJANGO_ALLOWED_HOSTS": "orders.example.com",
                "API_OPEN": "1",
            },
            ["False", "['orders.example.com']", "True", "True", "True"],
        ),
    ],
    ids=["local", "production"],
)
def test_debug_is_off_and_only_production_insists_on_https_and_a_given_key(tmp_path, env, expected):
    key_file = tmp_path / "key"
    names = ["DEBUG", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"]

    values = local_settings(*names, DJANGO_SECRET_KEY_FILE=str(key_file), **env)

    assert [values[name] for name in names] == expected
    assert key_file.exists() == (not env)  # a local run makes its own key; production never does


def test_a_secret_key_is_generated_once_private_and_shared_unless_one_is_given(tmp_path):
    key_file = tmp_path / "key"
    env = {
        "PATH": "",
        "DJANGO_SETTINGS_MODULE": "order_system.settings",
        "DJANGO_SECRET_KEY_FILE": str(key_file),
    }
    command = [sys.executable, "-c", READ_SETTINGS % (("SECRET_KEY",),)]
    starting = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    keys = {json.loads(process.communicate(timeout=60)[0])["SECRET_KEY"] for process in starting}

    assert keys == {key_file.read_text()}
    assert len(key_file.read_text()) == 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["key"]  # no temporary files left behind
    assert local_settings("SECRET_KEY", DJANGO_SECRET_KEY_FILE=str(key_file)) == {"SECRET_KEY": key_file.read_text()}
    given = local_settings("SECRET_KEY", DJANGO_SECRET_KEY="from-the-environment", DJANGO_SECRET_KEY_FILE=str(key_file))
    assert given == {"SECRET_KEY": "from-the-environment"}


MANY_PARAMETERS = "&".join(f"p{number}=1" for number in range(1001))
FORM = "application/x-www-form-urlencoded"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(
    ("method", "path", "extra", "status", "attr"),
    [
        ("get", "/healthz", {"HTTP_HOST": "evil.example"}, 400, "Host"),
        ("post", "/api/orders/", {"HTTP_HOST": "evil.example"}, 400, "Host"),
        ("get", f"/api/orders/?{MANY_PARAMETERS}", {}, 400, "query"),
        ("get", f"/admin/login/?{MANY_PARAMETERS}", {}, 400, "query"),
        ("post", "/admin/login/", {"data": MANY_PARAMETERS, "content_type": FORM}, 400, "body"),
        ("post", "/admin", {}, 404, "path"),
        ("post", "/dashboard", {}, 404, "path"),
        ("get", "/no-such-page", {}, 404, "path"),
    ],
)
def test_a_bad_request_gets_a_json_4xx_never_a_debug_page(settings, debug, method, path, extra, status, attr):
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)

    response = getattr(client, method)(path, **extra)

    assert (response.status_code, response["Content-Type"]) == (status, "application/json")
    assert [error["attr"] for error in response.json()["errors"]] == [attr]


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_get_missing_only_its_trailing_slash_is_still_redirected(settings, debug):
    settings.DEBUG = debug

    response = Client().get("/admin?next=x")

    assert (response.status_code, response["Location"]) == (301, "/admin/?next=x")


# Apart from the test, whose own source lines show on the debug page it renders.
PASSWORDS = {name: f"{name}-pw-{os.getpid()}" for name in ["broker", "payment", "cache", "database", "local"]}


def test_debug_pages_hide_passwords_in_urls(settings, rf):
    settings.CELERY_BROKER_URL = f"amqp://orders:{PASSWORDS['broker']}@rabbit.internal:5672//"
    settings.PAYMENT_SERVICE_URL = f"https://shop:{PASSWORDS['payment']}@pay.example/charge"
    cache_url = f"redis://:{PASSWORDS['cache']}@cache.internal:6379/1"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": cache_url}}
    safe = get_default_exception_reporter_filter().get_safe_settings()

    assert safe["CELERY_BROKER_URL"] == "amqp://********************@rabbit.internal:5672//"
    assert safe["PAYMENT_SERVICE_URL"] == "https://********************@pay.example/charge"
    assert safe["CACHES"]["default"]["LOCATION"] == "redis://********************@cache.internal:6379/1"

    # runserver copies the environment into request.META; a traceback shows its frames' local variables.
    request = rf.get("/", DATABASE_URL=f"postgres://orders:{PASSWORDS['database']}@db.internal/orders")
    try:
        url = f"redis://:{PASSWORDS['local']}@local.internal"  # noqa: F841 - a frame variable on the page
        raise ConnectionError("cannot reach the cache")
    except ConnectionError:
        page = technical_500_response(request, *sys.exc_info()).content.decode()
    assert {"rabbit.internal", "pay.example", "cache.internal", "db.internal", "local.internal"} <= set(
        re.findall(r"[a-z]+\.(?:internal|example)", page)
    )
    assert [password for password in PASSWORDS.values() if password in page] == []


def test_login_throttling_reads_its_limit_and_cool_off_from_the_environment(tmp_path):
    names = ("AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME")
    key_file = str(tmp_path / "key")

    assert local_settings(*names, DJANGO_SECRET_KEY_FILE=key_file) == {
        "AXES_FAILURE_LIMIT": "5",
        "AXES_COOLOFF_TIME": str(timedelta(minutes=15)),
    }
    assert local_settings(
        *names, DJANGO_SECRET_KEY_FILE=key_file, ADMIN_LOGIN_FAILURE_LIMIT="3", ADMIN_LOGIN_COOLOFF_MINUTES="60"
    ) == {"AXES_FAILURE_LIMIT": "3", "AXES_COOLOFF_TIME": str(timedelta(hours=1))}
