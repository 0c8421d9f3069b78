"""The developer's shell doesn't reach the tests: tests/environment.py drops the project's settings from it."""

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.environment import is_setting
from tests.helpers import ROOT, clean_env

SEES = """
import json, os
from pathlib import Path
from django.conf import settings
from tests.environment import is_setting

def test_what_it_sees():
    names = ("DEBUG", "ORDER_MAX_ATTEMPTS", "ORDER_QUEUE_BACKEND", "ORDER_CONCURRENCY")
    Path(os.environ["TEST_SEEN"]).write_text(json.dumps({
        "environ": sorted(filter(is_setting, os.environ)),
        "settings": [getattr(settings, name) for name in names],
        "database": str(settings.DATABASES["default"]["NAME"]),
    }))
"""


def seen_by_pytest(tmp_path: Path, **shell: str) -> dict:
    """What a test sees of the environment and the settings when `make test`'s pytest starts in this shell."""
    test, seen = tmp_path / "test_sees.py", tmp_path / "seen.json"
    test.write_text(SEES)
    command = [str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider", "-c", "pyproject.toml"]
    env = {**clean_env(**shell), "TEST_SEEN": str(seen)}
    result = subprocess.run([*command, str(test)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    return json.loads(seen.read_text())


def test_settings_in_the_developers_shell_change_nothing_but_the_database_url_is_kept(tmp_path):
    chosen = tmp_path / "chosen.sqlite3"
    shell = {
        "ORDER_MAX_ATTEMPTS": "1",
        "ORDER_QUEUE_BACKEND": "immediate",
        "DJANGO_DEBUG": "1",
        "ORDER_CONCURRENCY": "3",
    }

    plain = seen_by_pytest(tmp_path)
    configured = seen_by_pytest(tmp_path, **shell, DATABASE_URL=f"sqlite:///{chosen}")

    assert configured["settings"] == plain["settings"]
    assert configured["environ"] == ["DATABASE_URL", "DJANGO_SETTINGS_MODULE"]  # make test-services chooses PostgreSQL
    assert configured["database"] == str(chosen)


# os.environ.get("X"), os.environ["X"], env_int("X", ...) and "X" in os.environ, in the project's code.
READS = re.compile(r'(?:environ\.get\(|environ\[|env_\w+\()"(\w+)"|"(\w+)" in os\.environ')


def test_every_variable_the_project_reads_is_kept_from_the_tests():
    sources = [path for package in ("order_system", "orders", "metrics") for path in (ROOT / package).rglob("*.py")]
    read = {name for path in sources for names in READS.findall(path.read_text()) for name in names if name}

    assert {"DJANGO_DEBUG", "ORDER_PROCESSOR", "WEB_THREADS", "GUNICORN_THREADS"} <= read  # the scan finds them
    assert sorted(name for name in read if not is_setting(name)) == []
