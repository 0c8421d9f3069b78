"""python manage.py loadtest against a live server."""

import json
import subprocess
import sys

from tests.helpers import ROOT, clean_env, free_port


def loadtest(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "manage.py", "loadtest", "--no-progress", *args]
    return subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300)


def test_200_orders_are_all_accepted_and_followed_to_completion(server, database, tmp_path):
    report_file = tmp_path / "report.json"

    result = loadtest(
        "--url", server.url, "--orders", "200", "--concurrency", "200", "--wait", "--json", str(report_file)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_file.read_text())
    assert (report["accepted"], report["rejected"], report["transport_errors"]) == (200, {}, {})
    assert report["final_statuses"] == {"COMPLETED": 200}
    assert (report["lost"], report["stuck"], report["ok"]) == ([], [], True)
    assert report["latency_ms"]["p99"] >= report["latency_ms"]["p50"] > 0
    assert database.statuses() == {"COMPLETED": 200}


def test_a_server_that_is_not_there_fails_the_load_test(tmp_path):
    result = loadtest("--url", f"http://127.0.0.1:{free_port()}", "--orders", "5", "--concurrency", "5")

    assert result.returncode != 0
    assert "ConnectError" in result.stdout
    assert "FAILED" in result.stdout
