"""Servers with JWT on: verifying a provider's tokens, and signing their own for Django users."""

import subprocess
import sys

import pytest

from tests.helpers import ROOT, Server, SqliteDatabase, clean_env
from tests.jwks import Provider


@pytest.fixture(scope="module")
def provider():
    """A provider serving its JWKS on 127.0.0.1 for the module; stopped at the end."""
    provider = Provider().start()
    yield provider
    provider.stop()


def module_server(tmp_path_factory, name: str, **env: str) -> Server:
    workdir = tmp_path_factory.mktemp(name)
    server = Server(SqliteDatabase(workdir / "orders.sqlite3"), workdir / "server.log", **env)
    server.start()
    return server


@pytest.fixture(scope="module")
def provider_server(tmp_path_factory, provider):
    """A live server taking the provider's tokens (and a service token), without its order worker; stopped by PID."""
    server = module_server(
        tmp_path_factory, "provider", **provider.env(API_TOKENS="service-token", ORDER_WORKER_AUTOSTART="0")
    )
    yield server
    server.stop()


def create_users(server: Server, *users: tuple[str, str, bool]) -> None:
    """Django users (username, password, is_staff) in a server's database."""
    code = (
        "from django.contrib.auth.models import User\n"
        f"for name, password, staff in {list(users)!r}:\n"
        "    User.objects.create_user(name, password=password, is_staff=staff)\n"
    )
    command = [sys.executable, "manage.py", "shell", "-c", code]
    subprocess.run(command, cwd=ROOT, env=clean_env(DATABASE_URL=server.database.url), check=True, timeout=120)
