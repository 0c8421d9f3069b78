"""A pytest plugin: the tests see none of the project's settings from the developer's shell.

pytest-django imports the settings before any conftest.py is read, so this is a plugin that pyproject.toml's addopts
loads with `-p`, and its hook runs first.
"""

import os

import pytest

# What order_system reads from the environment (order_system/settings.py and server.py).
SETTINGS_PREFIXES = (
    *("ORDER_", "DJANGO_", "WEB_", "READYZ_", "ADMIN_LOGIN_", "CELERY_", "DATABASE_", "METRICS_", "CORS_"),
    *("API_", "JWT_", "WEBHOOK_", "CACHE_URL", "PAYMENT_SERVICE_URL", "LOG_LEVEL", "GUNICORN_"),
)
# Chosen on purpose: pytest-django's own variable, and the database `make test-services` runs the suite on.
KEPT = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")
DROPPED = pytest.StashKey[list[str]]()


def is_setting(name: str) -> bool:
    return name.startswith(SETTINGS_PREFIXES)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Drop the shell's settings before pytest-django loads Django's; the header names what was dropped."""
    dropped = sorted(name for name in os.environ if is_setting(name) and name not in KEPT)
    for name in dropped:
        del os.environ[name]
    early_config.stash[DROPPED] = dropped


def pytest_report_header(config: pytest.Config) -> str | None:
    dropped = config.stash.get(DROPPED, [])
    return f"ignored from the shell: {', '.join(dropped)}" if dropped else None
